/** The measurements on screen with their values (length, angle, area and HU statistics). */
import { annotation, type Types as ToolTypes } from "@cornerstonejs/tools";
import type { RenderingEngine } from "@cornerstonejs/core";
import { SAVED_TOOLS } from "./sr";

type Stats = Record<string, number | string | undefined>;

function round(value: unknown, digits = 1): string {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : "–";
}

export function describe(item: ToolTypes.Annotation): string {
  const toolName = item.metadata?.toolName ?? "";
  const cached = (item.data as { cachedStats?: Record<string, Stats> }).cachedStats ?? {};
  const stats: Stats = Object.values(cached)[0] ?? {};
  switch (toolName) {
    case "Length":
      return `Length ${round(stats.length)} ${stats.unit ?? "mm"}`;
    case "Angle":
      return `Angle ${round(stats.angle)}°`;
    case "EllipticalROI":
    case "RectangleROI":
      return (
        `${toolName === "EllipticalROI" ? "Ellipse" : "Rectangle"} area ${round(stats.area)} ${stats.areaUnit ?? "mm²"}, ` +
        `mean ${round(stats.mean)} SD ${round(stats.stdDev)} min ${round(stats.min, 0)} max ${round(stats.max, 0)} ${stats.modalityUnit ?? ""}`
      ).trim();
    case "KeyImage":
      return "Key image";
    default:
      return toolName;
  }
}

function sliceOf(item: ToolTypes.Annotation): string {
  const id = item.metadata?.referencedImageId ?? "";
  const match = /\/instances\/([^/]+)\/frames\/(\d+)$/.exec(id);
  return match ? `…${match[1].slice(-6)}${match[2] !== "1" ? ` f${match[2]}` : ""}` : "";
}

export function MeasurementList({ version, engine }: { version: number; engine: RenderingEngine | null }) {
  void version; // re-rendered by the parent when the annotation state changes
  const items = annotation.state.getAllAnnotations().filter((a) => SAVED_TOOLS.includes(a.metadata?.toolName ?? ""));
  return (
    <aside className="vv-measurements" aria-label="Measurements" data-testid="measurement-list" data-count={items.length}>
      <h2>Measurements</h2>
      {items.length === 0 ? <p>None yet.</p> : null}
      <ol>
        {items.map((item) => (
          <li key={item.annotationUID} data-testid="measurement" data-tool={item.metadata?.toolName}>
            <span>{describe(item)}</span> <small>{sliceOf(item)}</small>{" "}
            <button
              type="button"
              aria-label="Delete measurement"
              onClick={() => {
                if (item.annotationUID) annotation.state.removeAnnotation(item.annotationUID);
                engine?.render();
              }}
            >
              ×
            </button>
          </li>
        ))}
      </ol>
    </aside>
  );
}
