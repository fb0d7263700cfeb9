/** The first `limit` items of a long list, and a button to show them all. */
import { useState, type ReactNode } from "react";

export function ShowMore({ total, limit, children }: { total: number; limit: number; children: (shown: number) => ReactNode }) {
  const [all, setAll] = useState(false);
  const shown = all ? total : Math.min(total, limit);
  return (
    <>
      {children(shown)}
      {total > limit && (
        <button type="button" className="link show-more" aria-expanded={all} onClick={() => setAll(!all)}>
          {all ? "Show fewer" : `Show all ${total}`}
        </button>
      )}
    </>
  );
}
