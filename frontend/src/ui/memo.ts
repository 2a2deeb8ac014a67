import { Component, type ComponentChildren, type FunctionComponent, h } from "preact";

function shallowEqual(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((key) => Object.is(a[key], b[key]));
}

/** Skip re-rendering when props are shallowly equal (preact/compat's memo without compat). */
export function memo<P extends object>(component: FunctionComponent<P>) {
  return class Memo extends Component<P> {
    shouldComponentUpdate(next: P): boolean {
      return !shallowEqual(this.props as Record<string, unknown>, next as Record<string, unknown>);
    }
    render(props: P): ComponentChildren {
      return h(component, props);
    }
  };
}
