/** The imaging timeline: every study and photograph, newest first, with thumbnails. */
import type { TimelineEntry } from "../api/chart";
import { formatDate } from "../api/fhir";
import { useAuthorizedImage } from "../api/images";
import { Link } from "./router";

export function ImagingTimeline({ entries }: { entries: TimelineEntry[] }) {
  if (entries.length === 0) return <p className="muted">No images for this patient.</p>;
  return (
    <ol className="timeline" data-testid="imaging-timeline">
      {entries.map((entry) => (
        <li key={`${entry.kind}/${entry.id}`}>
          <TimelineCard entry={entry} />
        </li>
      ))}
    </ol>
  );
}

function TimelineCard({ entry }: { entry: TimelineEntry }) {
  const image = useAuthorizedImage(entry.thumbnail);
  const modalities = entry.modalities.filter(Boolean).join(", ") || (entry.kind === "photo" ? "Photo" : "");
  const title = entry.description || (entry.kind === "photo" ? "Photograph" : "Imaging study");
  const body = (
    <>
      <div className="thumb" aria-hidden={image.state !== "ready"}>
        {image.state === "ready" ? <img src={image.url} alt={`${title}, ${formatDate(entry.date)}`} loading="lazy" /> : <span className="thumb-empty">{image.state === "loading" ? "…" : modalities || "—"}</span>}
      </div>
      <div className="timeline-text">
        <span className="timeline-date">{formatDate(entry.date) || "date unknown"}</span>
        <span className="timeline-title">
          {modalities && <span className="modality">{modalities}</span>} {title}
        </span>
        {entry.kind === "imaging-study" && (
          <span className="muted">
            {entry.numberOfSeries ?? "?"} series · {entry.numberOfInstances ?? "?"} images
          </span>
        )}
        <ReportStatus entry={entry} />
      </div>
    </>
  );
  if (entry.kind === "imaging-study" && entry.studyInstanceUid) {
    return (
      <Link href={`/viewer?study=${encodeURIComponent(entry.studyInstanceUid)}`} className="timeline-card" data-testid="timeline-study" data-study-uid={entry.studyInstanceUid} aria-label={`Open ${title} of ${formatDate(entry.date)} in the viewer`}>
        {body}
      </Link>
    );
  }
  return (
    <div className="timeline-card" data-testid="timeline-photo">
      {body}
    </div>
  );
}

const REPORT_LABELS: Record<string, string> = {
  registered: "report registered",
  partial: "preliminary report",
  preliminary: "preliminary report",
  final: "final report",
  amended: "amended report",
  corrected: "corrected report",
  appended: "report appended",
  cancelled: "report cancelled",
  "entered-in-error": "report in error",
};

function ReportStatus({ entry }: { entry: TimelineEntry }) {
  if (entry.kind !== "imaging-study") return null;
  if (entry.report === null) return <span className="report report-none">not reported</span>;
  const label = REPORT_LABELS[entry.report.status] ?? `report ${entry.report.status}`;
  return (
    <span className={`report report-${entry.report.status}`} title={entry.report.conclusion ?? undefined}>
      {label}
    </span>
  );
}
