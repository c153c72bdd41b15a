// Whether an element is in view, for players that pause while scrolled away (pauseWhenOffscreen).

/**
 * Calls `onChange(true)` when `element` leaves the viewport and `onChange(false)` when it is back
 * (IntersectionObserver; a zero-size or `display: none` element counts as out of view). Returns
 * the function that stops watching, or undefined where there is no IntersectionObserver.
 */
export function observeOffscreen(element: Element, onChange: (offscreen: boolean) => void): (() => void) | undefined {
  if (typeof IntersectionObserver !== "function") return undefined;
  let last: boolean | undefined;
  const observer = new IntersectionObserver((entries) => {
    const entry = entries.at(-1);
    if (entry === undefined) return;
    const offscreen = !entry.isIntersecting;
    if (offscreen === last) return;
    last = offscreen;
    onChange(offscreen);
  });
  observer.observe(element);
  return () => observer.disconnect();
}
