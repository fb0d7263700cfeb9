/** Corner overlays of one viewport: patient, study, series, slice i/N, W/L and zoom. */
import { useEffect, useState } from "react";
import { Enums, type RenderingEngine, type Types } from "@cornerstonejs/core";
import type { SeriesInfo, StudyInfo } from "./dicomweb";

interface State {
  slice: string;
  wl: string;
  zoom: string;
}

function formatDate(value: string): string {
  return /^\d{8}$/.test(value) ? `${value.slice(0, 4)}-${value.slice(4, 6)}-${value.slice(6, 8)}` : value;
}

function read(viewport: Types.IViewport | undefined): State {
  if (!viewport) return { slice: "", wl: "", zoom: "" };
  let slice = "";
  let wl = "";
  if (viewport.type === Enums.ViewportType.STACK) {
    const stack = viewport as Types.IStackViewport;
    slice = `${stack.getCurrentImageIdIndex() + 1}/${stack.getImageIds().length}`;
  } else if (viewport.type === Enums.ViewportType.ORTHOGRAPHIC) {
    const volume = viewport as Types.IVolumeViewport;
    slice = `${volume.getSliceIndex() + 1}/${volume.getNumberOfSlices()}`;
  }
  if (viewport.type !== Enums.ViewportType.VOLUME_3D) {
    const range = (viewport as Types.IStackViewport).getProperties().voiRange;
    if (range) wl = `W ${Math.round(range.upper - range.lower)} L ${Math.round((range.upper + range.lower) / 2)}`;
  }
  const zoom = `${Math.round(viewport.getZoom() * 100)}%`;
  return { slice, wl, zoom };
}

export function Overlay({
  engine,
  viewportId,
  name,
  study,
  series,
}: {
  engine: RenderingEngine;
  viewportId: string;
  name: string;
  study: StudyInfo;
  series: SeriesInfo;
}) {
  const [state, setState] = useState<State>(() => read(engine.getViewport(viewportId)));
  useEffect(() => {
    const viewport = engine.getViewport(viewportId);
    if (!viewport) return;
    const element = viewport.element;
    let frame = 0;
    const update = (): void => {
      if (frame) return;
      frame = window.requestAnimationFrame(() => {
        frame = 0;
        const next = read(engine.getViewport(viewportId));
        setState((prev) => (prev.slice === next.slice && prev.wl === next.wl && prev.zoom === next.zoom ? prev : next));
        // Tests read the slice position without parsing the overlay text.
        if (next.slice) element.dataset.slice = next.slice;
      });
    };
    element.addEventListener(Enums.Events.IMAGE_RENDERED, update);
    update();
    return () => {
      element.removeEventListener(Enums.Events.IMAGE_RENDERED, update);
      if (frame) window.cancelAnimationFrame(frame);
    };
  }, [engine, viewportId]);
  return (
    <div className="vv-overlay" aria-hidden="true" data-testid={`overlay-${name}`}>
      <div className="vv-tl">
        <div>{study.patientName}</div>
        <div>ID {study.patientId}</div>
      </div>
      <div className="vv-tr">
        <div>{formatDate(study.studyDate)}</div>
        <div>{study.description}</div>
      </div>
      <div className="vv-bl">
        <div>
          {series.modality} {series.number}: {series.description}
        </div>
        {state.slice ? <div data-testid={`slice-${name}`}>Im {state.slice}</div> : null}
        {name !== "stack" && name !== "prior" ? <div>{name.toUpperCase()}</div> : null}
      </div>
      <div className="vv-br">
        {state.wl ? <div>{state.wl}</div> : null}
        <div>Zoom {state.zoom}</div>
      </div>
    </div>
  );
}
