"""Where the studies live: opening a journal file, an archive or a database on Optuna's terms
(``backends``), and the journal file's own lock, appends and held writes (``journal``). Every stage
reads and writes through here; nothing here trains or reports."""
