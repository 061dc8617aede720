//! Versioned migrations, tracked in SQLite's `user_version`. Append only: a released migration
//! is never edited.

pub const MIGRATIONS: &[&str] = &[
    // 1: tokens, challenges, audit
    "CREATE TABLE tokens (
        serial      TEXT PRIMARY KEY,
        user        TEXT NOT NULL,
        realm       TEXT NOT NULL,
        type        TEXT NOT NULL,
        active      INTEGER NOT NULL DEFAULT 1,
        pin_hash    TEXT,
        sealed_key  BLOB NOT NULL,
        digits      INTEGER NOT NULL DEFAULT 6,
        algorithm   TEXT NOT NULL DEFAULT 'sha1',
        period      INTEGER NOT NULL DEFAULT 30,
        drift       INTEGER NOT NULL DEFAULT 0,
        counter     INTEGER NOT NULL DEFAULT 0,
        fail_count  INTEGER NOT NULL DEFAULT 0,
        last_fail   INTEGER,
        info        TEXT NOT NULL DEFAULT '{}',
        description TEXT NOT NULL DEFAULT '',
        created     INTEGER NOT NULL
    );
    CREATE INDEX tokens_user ON tokens (user, realm);
    CREATE TABLE challenges (
        transaction_id TEXT NOT NULL,
        serial         TEXT NOT NULL,
        user           TEXT NOT NULL,
        realm          TEXT NOT NULL,
        created        INTEGER NOT NULL,
        expires        INTEGER NOT NULL,
        state          TEXT NOT NULL DEFAULT 'open',
        data           BLOB,
        PRIMARY KEY (transaction_id, serial)
    );
    CREATE INDEX challenges_state ON challenges (state, expires);
    CREATE TABLE audit (
        id      INTEGER PRIMARY KEY,
        time    INTEGER NOT NULL,
        service TEXT NOT NULL,
        rhost   TEXT NOT NULL,
        user    TEXT NOT NULL,
        realm   TEXT NOT NULL,
        serial  TEXT NOT NULL,
        type    TEXT NOT NULL,
        result  TEXT NOT NULL,
        reason  TEXT NOT NULL
    );
    CREATE INDEX audit_user ON audit (user, time);",
    // 2: audit rows are pruned by age ([audit] keep_days)
    "CREATE INDEX audit_time ON audit (time);",
    // 3: e-mail and SMS OTPs sent, counted against [email]/[sms] max_per_hour
    "CREATE TABLE sends (
        id     INTEGER PRIMARY KEY,
        time   INTEGER NOT NULL,
        user   TEXT NOT NULL,
        realm  TEXT NOT NULL,
        type   TEXT NOT NULL,
        serial TEXT NOT NULL
    );
    CREATE INDEX sends_user ON sends (user, realm, type, time);",
    // 4: privacyIDEA's offline values ([remote] offline): hashes of PIN+OTP for the next
    // counters of a remote HOTP token, and the token that refills them
    "CREATE TABLE offline (
        serial  TEXT NOT NULL,
        counter INTEGER NOT NULL,
        user    TEXT NOT NULL,
        realm   TEXT NOT NULL,
        hash    TEXT NOT NULL,
        PRIMARY KEY (serial, counter)
    );
    CREATE INDEX offline_user ON offline (user, realm);
    CREATE TABLE offline_refill (
        serial      TEXT PRIMARY KEY,
        refilltoken TEXT NOT NULL
    );",
    // 5: failures counted per source ([auth] lock_scope = "source"): who failed from where,
    // and the uid of the caller that asked for each audited attempt (only root callers' accepts
    // open a policy's grace window; a refused caller's rows are counted per minute)
    "CREATE TABLE source_fails (
        user      TEXT NOT NULL,
        realm     TEXT NOT NULL,
        source    TEXT NOT NULL,
        count     INTEGER NOT NULL,
        last_fail INTEGER NOT NULL,
        PRIMARY KEY (user, realm, source)
    );
    CREATE INDEX source_fails_time ON source_fails (last_fail);
    ALTER TABLE audit ADD COLUMN caller INTEGER;",
    // 6: per user, the failures summed per class of sources ([auth] account_max_fail) and
    // those the user is told of at the next success, in one row (a refused attempt changes
    // one page for both); the sources a user passed the second factor from (familiar ones);
    // the source and PAM_RUSER of each audited attempt; source_fails keyed by its primary key
    // alone (WITHOUT ROWID: a refused attempt changes one page of it, not two)
    "CREATE TABLE account_fails (
        user             TEXT NOT NULL,
        realm            TEXT NOT NULL,
        familiar         INTEGER NOT NULL DEFAULT 0,
        familiar_last    INTEGER NOT NULL DEFAULT 0,
        unfamiliar       INTEGER NOT NULL DEFAULT 0,
        unfamiliar_last  INTEGER NOT NULL DEFAULT 0,
        missed           INTEGER NOT NULL DEFAULT 0,
        missed_last      INTEGER NOT NULL DEFAULT 0,
        missed_source    TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (user, realm)
    ) WITHOUT ROWID;
    CREATE TABLE familiar_sources (
        user      TEXT NOT NULL,
        realm     TEXT NOT NULL,
        source    TEXT NOT NULL,
        last_pass INTEGER NOT NULL,
        PRIMARY KEY (user, realm, source)
    ) WITHOUT ROWID;
    CREATE INDEX familiar_sources_time ON familiar_sources (last_pass);
    CREATE TABLE source_fails_by_key (
        user      TEXT NOT NULL,
        realm     TEXT NOT NULL,
        source    TEXT NOT NULL,
        count     INTEGER NOT NULL,
        last_fail INTEGER NOT NULL,
        PRIMARY KEY (user, realm, source)
    ) WITHOUT ROWID;
    INSERT INTO source_fails_by_key SELECT user, realm, source, count, last_fail FROM source_fails;
    DROP TABLE source_fails;
    ALTER TABLE source_fails_by_key RENAME TO source_fails;
    CREATE INDEX source_fails_time ON source_fails (last_fail);
    ALTER TABLE audit ADD COLUMN source TEXT NOT NULL DEFAULT '';
    ALTER TABLE audit ADD COLUMN ruser TEXT NOT NULL DEFAULT '';",
];
