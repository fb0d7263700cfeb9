/** Clinical documents (DocumentReference): listed, and opened with the user's token. */
import { useState } from "react";
import { authFetch } from "../auth/session";
import { conceptText, formatDate, type CodeableConcept, type Resource } from "../api/fhir";

interface Attachment {
  contentType?: string;
  url?: string;
  data?: string;
  title?: string;
}

function attachments(document: Resource): Attachment[] {
  return ((document.content as { attachment?: Attachment }[] | undefined) ?? []).map((c) => c.attachment ?? {}).filter((a) => a.url || a.data);
}

/** A blob: URL for an attachment: inline data decoded, or fetched from this server with the
 * token (never sent elsewhere). */
async function open(attachment: Attachment): Promise<string> {
  const type = attachment.contentType ?? "application/octet-stream";
  if (attachment.data) {
    const bytes = Uint8Array.from(atob(attachment.data), (c) => c.charCodeAt(0));
    return URL.createObjectURL(new Blob([bytes], { type }));
  }
  const target = new URL(attachment.url ?? "", `${window.location.origin}/fhir/`);
  if (target.origin !== window.location.origin) return target.href;
  const response = await authFetch(target.href, { headers: { Accept: type } });
  if (!response.ok) throw new Error(`The document could not be opened (${response.status})`);
  return URL.createObjectURL(await response.blob());
}

export function DocumentList({ documents }: { documents: Resource[] }) {
  const [error, setError] = useState<string | null>(null);
  if (documents.length === 0) return <p className="muted">None recorded.</p>;
  const show = (attachment: Attachment): void => {
    setError(null);
    // Open the window now (inside the click) so no pop-up blocker stops it; fill it later.
    const opened = window.open("about:blank", "_blank");
    open(attachment)
      .then((url) => {
        if (opened) opened.location.href = url;
        else window.location.assign(url);
      })
      .catch((e: unknown) => {
        opened?.close();
        setError(e instanceof Error ? e.message : String(e));
      });
  };
  return (
    <>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      <ul className="items">
        {documents.map((d) => (
          <li key={`DocumentReference/${d.id}`}>
            <span className="item-main">{String(d.description ?? "") || conceptText(d.type as CodeableConcept) || "Document"}</span>
            <span className="item-detail">
              {[formatDate(d.date as string | undefined), conceptText(d.type as CodeableConcept), String(d.docStatus ?? d.status ?? "")].filter(Boolean).join(" · ")}
            </span>
            {attachments(d).map((a, i) => (
              <button key={i} type="button" className="link" onClick={() => show(a)}>
                Open {a.title ?? a.contentType ?? "attachment"}
              </button>
            ))}
          </li>
        ))}
      </ul>
    </>
  );
}
