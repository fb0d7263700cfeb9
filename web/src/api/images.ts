/**
 * Images that need the user's token: <img> cannot send an Authorization header, so the image
 * is fetched with it and shown from a blob: URL (released when no longer shown). The token is
 * only ever sent to this server's origin; data: URLs are shown as they are.
 */
import { useEffect, useState } from "react";
import { authFetch } from "../auth/session";

export type ImageState = { state: "loading" } | { state: "ready"; url: string } | { state: "none" };

function sameOrigin(url: string): URL | null {
  try {
    const resolved = new URL(url, `${window.location.origin}/fhir/`);
    return resolved.origin === window.location.origin ? resolved : null;
  } catch {
    return null;
  }
}

export function useAuthorizedImage(url: string | null | undefined): ImageState {
  const [image, setImage] = useState<ImageState>({ state: "loading" });
  useEffect(() => {
    if (!url) {
      setImage({ state: "none" });
      return;
    }
    if (url.startsWith("data:image/")) {
      setImage({ state: "ready", url });
      return;
    }
    const target = sameOrigin(url);
    if (target === null) {
      setImage({ state: "none" });
      return;
    }
    const controller = new AbortController();
    let objectUrl: string | null = null;
    setImage({ state: "loading" });
    authFetch(target.href, { headers: { Accept: "image/jpeg, image/png, image/*" }, signal: controller.signal })
      .then(async (response) => {
        const type = response.headers.get("content-type") ?? "";
        if (!response.ok || !type.startsWith("image/")) throw new Error(`thumbnail: ${response.status}`);
        objectUrl = URL.createObjectURL(await response.blob());
        setImage({ state: "ready", url: objectUrl });
      })
      .catch(() => {
        if (!controller.signal.aborted) setImage({ state: "none" });
      });
    return () => {
      controller.abort();
      if (objectUrl) URL.revokeObjectURL(objectUrl);
    };
  }, [url]);
  return image;
}
