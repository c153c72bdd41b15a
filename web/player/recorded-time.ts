// How a recorded time is shown ("REC 10:32:05"): the element's overlay and the dashboard's.

/** HH:MM:SS of `ms` since the epoch, in this page's time zone. */
export function formatClock(ms: number): string {
  const d = new Date(ms);
  const two = (n: number): string => String(n).padStart(2, "0");
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}
