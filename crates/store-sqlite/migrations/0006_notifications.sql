-- Events already notified (budget thresholds per month, suspensions), so each is sent once.
CREATE TABLE notified_events (
    key   TEXT PRIMARY KEY NOT NULL,
    time  TEXT NOT NULL
);

-- What was sent to whom, and whether it arrived.
CREATE TABLE notifications (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    time      TEXT NOT NULL,
    channel   TEXT NOT NULL,
    target    TEXT NOT NULL,
    key       TEXT NOT NULL,
    subject   TEXT NOT NULL,
    status    TEXT NOT NULL,
    attempts  INTEGER NOT NULL,
    error     TEXT
);
