// Filtering and sorting of the peers table.

/**
 * Keep the peers whose id, name or address contains every whitespace-separated
 * term of `query` (case-insensitive). An empty query keeps everything.
 */
export function filterPeers(rows, query) {
  const terms = String(query ?? '').toLowerCase().split(/\s+/).filter(Boolean);
  if (terms.length === 0) return rows.slice();
  return rows.filter((p) => {
    const hay = `${p.id ?? ''}\n${p.name ?? ''}\n${p.addr ?? ''}`.toLowerCase();
    return terms.every((t) => hay.includes(t));
  });
}

/** Columns of the peers table: key, heading, numeric?, and which are hidden on phones. */
export const PEER_COLUMNS = [
  { key: 'name', label: 'Name', numeric: false },
  { key: 'id', label: 'ID', numeric: false, optional: true },
  { key: 'addr', label: 'Address', numeric: false, optional: true },
  { key: 'last_seen', label: 'Last heartbeat', numeric: true },
  { key: 'msgs_in_per_s', label: 'In', numeric: true },
  { key: 'msgs_out_per_s', label: 'Out', numeric: true },
  { key: 'latency_p50_ms', label: 'p50', numeric: true, optional: true },
  { key: 'latency_p99_ms', label: 'p99', numeric: true },
  { key: 'outbox', label: 'Outbox', numeric: true },
];

/**
 * Sort a copy of `rows` by `key` ('asc' | 'desc'). Missing values sort last in
 * both directions; ties fall back to the id so the order is stable between updates.
 */
export function sortPeers(rows, key, dir = 'asc') {
  const col = PEER_COLUMNS.find((c) => c.key === key) ?? PEER_COLUMNS[0];
  const sign = dir === 'desc' ? -1 : 1;
  const val = (p) => {
    const v = p[col.key];
    if (col.numeric) return typeof v === 'number' && Number.isFinite(v) ? v : null;
    return typeof v === 'string' ? v.toLowerCase() : null;
  };
  return rows.slice().sort((a, b) => {
    const va = val(a);
    const vb = val(b);
    if (va === null && vb !== null) return 1;
    if (vb === null && va !== null) return -1;
    if (va !== null && vb !== null && va !== vb) return (va < vb ? -1 : 1) * sign;
    return String(a.id ?? '').localeCompare(String(b.id ?? ''));
  });
}
