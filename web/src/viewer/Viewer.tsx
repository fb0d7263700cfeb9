// Minimal stand-in created by F1 so the app builds; F2 owns this file and replaces it.
export function Viewer({ studyUid, priorUid }: { studyUid: string; priorUid?: string }) {
  return <div data-testid="viewer" data-study={studyUid} data-prior={priorUid ?? ""} />;
}
