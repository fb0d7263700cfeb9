/**
 * Readiness signals for people and tests: a viewport element gets data-rendered="true" after
 * its first render whose canvas is not blank (pixels sampled on a grid), never before.
 */
import { Enums } from "@cornerstonejs/core";

/** True when the sampled pixels of `canvas` are not all (nearly) one colour. */
export function canvasHasContent(canvas: HTMLCanvasElement): boolean {
  if (canvas.width === 0 || canvas.height === 0) return false;
  const context = canvas.getContext("2d", { willReadFrequently: false });
  if (!context) return false;
  const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
  const steps = 24;
  let min = 255;
  let max = 0;
  for (let j = 1; j < steps; j += 1) {
    for (let i = 1; i < steps; i += 1) {
      const x = Math.floor((canvas.width * i) / steps);
      const y = Math.floor((canvas.height * j) / steps);
      const offset = (y * canvas.width + x) * 4;
      const luminance = Math.max(data[offset], data[offset + 1], data[offset + 2]);
      min = Math.min(min, luminance);
      max = Math.max(max, luminance);
    }
  }
  return max - min > 8;
}

/** Watch `element` (an enabled Cornerstone element); returns a function that stops watching. */
export function watchRendered(element: HTMLElement, onRendered?: () => void): () => void {
  delete element.dataset.rendered;
  let timer = 0;
  const check = (): void => {
    if (timer) window.clearTimeout(timer);
    timer = 0;
    if (element.dataset.rendered === "true") return;
    const canvas = element.querySelector("canvas");
    if (canvas && canvasHasContent(canvas)) {
      element.dataset.rendered = "true";
      stop();
      onRendered?.();
    }
  };
  // IMAGE_RENDERED is triggered after the frame was drawn onto the on-screen canvas (the
  // rendering engine draws every flagged viewport, then triggers the events): sample it then,
  // not in a later task, which waits behind the image decoding that keeps the page busy while
  // a volume streams in. A new slice (the other events) is followed by its render; checking
  // after it in a later task stays as a fallback.
  const handler = (event: Event): void => {
    if (event.type === Enums.Events.IMAGE_RENDERED) check();
    else if (!timer) timer = window.setTimeout(check, 0);
  };
  const events = [Enums.Events.IMAGE_RENDERED, Enums.Events.VOLUME_NEW_IMAGE, Enums.Events.STACK_NEW_IMAGE];
  for (const name of events) element.addEventListener(name, handler);
  function stop(): void {
    for (const name of events) element.removeEventListener(name, handler);
    if (timer) window.clearTimeout(timer);
  }
  return stop;
}
