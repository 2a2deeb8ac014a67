// Model output is untrusted: it is parsed as Markdown, then everything goes through DOMPurify
// before it touches the DOM. Highlighting runs only on finished messages; while a message
// streams, its code is escaped but not highlighted, which keeps each frame cheap.
import DOMPurify from "dompurify";
import hljs from "highlight.js/lib/core";
import bash from "highlight.js/lib/languages/bash";
import javascript from "highlight.js/lib/languages/javascript";
import json from "highlight.js/lib/languages/json";
import python from "highlight.js/lib/languages/python";
import sql from "highlight.js/lib/languages/sql";
import typescript from "highlight.js/lib/languages/typescript";
import xml from "highlight.js/lib/languages/xml";
import { Marked, type Tokens } from "marked";

hljs.registerLanguage("bash", bash);
hljs.registerLanguage("javascript", javascript);
hljs.registerLanguage("json", json);
hljs.registerLanguage("python", python);
hljs.registerLanguage("sql", sql);
hljs.registerLanguage("typescript", typescript);
hljs.registerLanguage("xml", xml);

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

function codeBlock(token: Tokens.Code, highlight: boolean): string {
  const lang = (token.lang ?? "").trim().split(/\s+/)[0].toLowerCase();
  const known = lang && hljs.getLanguage(lang) ? lang : "";
  const body =
    highlight && known
      ? hljs.highlight(token.text, { language: known, ignoreIllegals: true }).value
      : escapeHtml(token.text);
  const label = escapeHtml(lang || "text");
  return (
    `<div class="code-block"><div class="code-head"><span>${label}</span>` +
    `<button type="button" class="code-copy" aria-label="Copy ${label} code">Copy</button></div>` +
    `<pre><code class="hljs${known ? ` language-${known}` : ""}">${body}</code></pre></div>`
  );
}

function makeParser(highlight: boolean): Marked {
  return new Marked({
    gfm: true,
    breaks: true,
    renderer: {
      code: (token: Tokens.Code) => codeBlock(token, highlight),
      // Model output never loads remote images: an image URL can carry the conversation out
      // to a third party (prompt-injection exfiltration). The link stays, for the user to open.
      image: (token: Tokens.Image) =>
        `<a href="${escapeHtml(token.href)}">${escapeHtml(token.text || "image")}</a>`,
    },
  });
}

const highlighted = makeParser(true);
const plain = makeParser(false);

// Attributes that make the browser fetch or navigate to a URL. Only `a[href]` may keep one:
// anything else (an SVG <image href>, <feImage href>, <table background>, poster, srcset...)
// would load a remote resource with no click, and could carry the conversation out in its URL.
const URL_ATTRIBUTES = new Set([
  "action", "background", "cite", "codebase", "data", "dynsrc", "formaction", "href", "icon",
  "imagesrcset", "longdesc", "lowsrc", "manifest", "ping", "poster", "profile", "src", "srcset",
  "usemap", "xlink:href",
]);
// Link schemes a person may follow; anything without a scheme is a relative link.
const SAFE_URL = /^(?:(?:https?|mailto):|[^a-z]|[a-z+.-]+(?:[^a-z+.\-:]|$))/i;

let hooked = false;
function installHooks(): void {
  if (hooked) return;
  DOMPurify.addHook("uponSanitizeAttribute", (node, data) => {
    if (URL_ATTRIBUTES.has(data.attrName) && !(node.tagName === "A" && data.attrName === "href")) {
      data.keepAttr = false;
    }
  });
  // Links from model output open in a new tab without handing it our window.
  DOMPurify.addHook("afterSanitizeAttributes", (node) => {
    if (node.tagName === "A" && node.getAttribute("href")) {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer nofollow");
    }
  });
  hooked = true;
}

function sanitize(html: string): string {
  installHooks();
  return DOMPurify.sanitize(html, {
    // HTML only: no SVG or MathML, whose elements load URLs in ways the HTML rules do not see.
    USE_PROFILES: { html: true },
    FORBID_TAGS: ["style", "form", "input", "textarea", "select", "iframe", "object", "embed", "img", "video", "audio", "source", "picture", "track", "link", "meta", "base"],
    FORBID_ATTR: ["style"],
    ADD_ATTR: ["target"],
    ALLOWED_URI_REGEXP: SAFE_URL,
  });
}

const cache = new Map<string, string>();
const CACHE_LIMIT = 600;

/** Sanitised HTML for a message. Finished messages are cached by their text. */
export function renderMarkdown(text: string, { streaming = false } = {}): string {
  if (!streaming) {
    const hit = cache.get(text);
    if (hit !== undefined) return hit;
  }
  const html = sanitize((streaming ? plain : highlighted).parse(text, { async: false }) as string);
  if (!streaming) {
    if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
    cache.set(text, html);
  }
  return html;
}
