// The transfer queue's database schema and its migrations. Every migration
// is additive (new tables, new indexes, new columns with defaults), so rows
// an older version wrote stay valid, and each is applied in one transaction
// together with its row in `sluice_queue_schema`.

import type { DatabaseSync } from "node:sqlite";
import { UnsupportedError } from "./errors.ts";

/** The statements of schema version N + 1 at index N. Append only. */
export const MIGRATIONS: readonly (readonly string[])[] = [
  // 1: one row per transfer, its spec, state and outcome. Rows are never
  // deleted, so plain rowids (no AUTOINCREMENT, one write less) never repeat.
  [
    `CREATE TABLE transfers (
      id INTEGER PRIMARY KEY,
      dest TEXT NOT NULL,
      urls TEXT NOT NULL,
      sha256 TEXT,
      size INTEGER,
      headers TEXT NOT NULL DEFAULT '[]',
      state TEXT NOT NULL,
      attempts INTEGER NOT NULL DEFAULT 0,
      bytes_done INTEGER NOT NULL DEFAULT 0,
      total INTEGER,
      resumed_from INTEGER,
      restarts INTEGER NOT NULL DEFAULT 0,
      error_type TEXT,
      error_message TEXT,
      owner TEXT,
      result_url TEXT,
      result_sha256 TEXT,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      started_at INTEGER,
      finished_at INTEGER
    )`,
    // Partial indexes hold only live rows: small, and a finished transfer
    // leaves them for good.
    "CREATE INDEX transfers_queued ON transfers (id) WHERE state = 'queued'",
    "CREATE INDEX transfers_running ON transfers (owner) WHERE state = 'running'",
    "CREATE INDEX transfers_by_dest ON transfers (dest, id)",
  ],
  // 2: the history of attempts. A transfer's row describes its attempt
  // under way or its last; an attempt that ends without ending the transfer
  // (retried, stopped, interrupted by a crash) moves to transfer_attempts.
  // So a transfer that succeeds at once writes no history row at all.
  [
    `CREATE TABLE transfer_attempts (
      id INTEGER PRIMARY KEY,
      transfer_id INTEGER NOT NULL REFERENCES transfers (id),
      attempt INTEGER NOT NULL,
      owner TEXT,
      outcome TEXT NOT NULL,
      resumed_from INTEGER,
      bytes INTEGER,
      error_type TEXT,
      error_message TEXT,
      started_at INTEGER NOT NULL,
      finished_at INTEGER NOT NULL
    )`,
    "CREATE INDEX transfer_attempts_by_transfer ON transfer_attempts (transfer_id, id)",
    "ALTER TABLE transfers ADD COLUMN attempt_started_at INTEGER",
  ],
];

/** The newest schema version this code knows. */
export const SCHEMA_VERSION: number = MIGRATIONS.length;

/** The schema version of `db` (0 for an empty database). */
export function schemaVersion(db: DatabaseSync): number {
  const table = db.prepare(
    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sluice_queue_schema'",
  ).get();
  if (table === undefined) return 0;
  const row = db.prepare(
    "SELECT coalesce(max(version), 0) AS version FROM sluice_queue_schema",
  ).get() as { version: number };
  return row.version;
}

/**
 * The schema version of `db`, or `UnsupportedError` when it is newer than
 * this code knows.
 */
export function knownVersion(db: DatabaseSync, path: string): number {
  const version = schemaVersion(db);
  if (version > SCHEMA_VERSION) {
    throw new UnsupportedError({
      format: "queue database",
      feature: `schema versions above ${SCHEMA_VERSION}`,
      subject: `${path} has version ${version}`,
    });
  }
  return version;
}

/**
 * Brings `db` to version `target` (the newest by default) in one
 * transaction, and returns the version it had before. A database newer than
 * this code is refused with `UnsupportedError` and left as it is.
 */
export function migrate(
  db: DatabaseSync,
  path: string,
  target: number = SCHEMA_VERSION,
): number {
  // IMMEDIATE: two processes opening a new database at once apply it once.
  db.exec("BEGIN IMMEDIATE");
  try {
    const before = knownVersion(db, path);
    db.exec(
      "CREATE TABLE IF NOT EXISTS sluice_queue_schema (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    );
    const record = db.prepare(
      "INSERT INTO sluice_queue_schema (version, applied_at) VALUES (?, ?)",
    );
    for (let version = before + 1; version <= target; version++) {
      for (const statement of MIGRATIONS[version - 1]!) db.exec(statement);
      record.run(version, Date.now());
    }
    db.exec("COMMIT");
    return before;
  } catch (error) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw error;
  }
}
