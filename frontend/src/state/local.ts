/** localStorage that never throws (private mode, full quota): reads give "", writes are lost. */
export function readLocal(key: string): string {
  try {
    return localStorage.getItem(key) ?? "";
  } catch {
    return "";
  }
}

/** Store `value` under `key`; "" removes the key. */
export function writeLocal(key: string, value: string): void {
  try {
    if (value) localStorage.setItem(key, value);
    else localStorage.removeItem(key);
  } catch {
    /* private mode: the value still applies for this page */
  }
}
