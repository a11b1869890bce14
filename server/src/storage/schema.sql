CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY,
    device_name TEXT NOT NULL DEFAULT '',
    user_principal_name TEXT NOT NULL DEFAULT '',
    enrollment_type TEXT NOT NULL DEFAULT '',
    hw_dev_id TEXT NOT NULL DEFAULT '',
    os_version TEXT NOT NULL DEFAULT '',
    os_edition TEXT NOT NULL DEFAULT '',
    manufacturer TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    language TEXT NOT NULL DEFAULT '',
    dm_version TEXT NOT NULL DEFAULT '',
    enrolled_at TEXT NOT NULL,
    last_sync_at TEXT,
    client_name TEXT NOT NULL,
    client_secret TEXT NOT NULL,
    client_nonce TEXT NOT NULL,
    server_name TEXT NOT NULL,
    server_secret TEXT NOT NULL,
    server_nonce TEXT NOT NULL,
    ime_required INTEGER NOT NULL DEFAULT 0,
    ime_version TEXT NOT NULL DEFAULT '',
    ime_state TEXT NOT NULL DEFAULT 'none'
);
CREATE INDEX IF NOT EXISTS devices_name ON devices (lower(device_name));
CREATE TABLE IF NOT EXISTS certificates (
    serial TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    thumbprint TEXT NOT NULL,
    der BLOB NOT NULL,
    issued_at TEXT NOT NULL,
    not_after TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS certificates_thumbprint ON certificates (thumbprint);
CREATE TABLE IF NOT EXISTS revoked_certificates (
    thumbprint TEXT PRIMARY KEY,
    revoked_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    auth TEXT NOT NULL,
    outcome TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS sessions_device ON sessions (device_id);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_row INTEGER NOT NULL,
    device_id TEXT NOT NULL,
    direction TEXT NOT NULL,
    msg_id TEXT NOT NULL,
    at TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_session ON messages (session_row);
CREATE TABLE IF NOT EXISTS commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    verb TEXT NOT NULL,
    target TEXT NOT NULL,
    xml TEXT NOT NULL,
    origin TEXT NOT NULL,
    state TEXT NOT NULL,
    queued_at TEXT NOT NULL,
    delivered_at TEXT,
    completed_at TEXT,
    deliveries INTEGER NOT NULL DEFAULT 0,
    status INTEGER,
    results TEXT,
    retry_of INTEGER
);
CREATE INDEX IF NOT EXISTS commands_device_state ON commands (device_id, state);
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    device_id TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_device ON journal (device_id, seq);
CREATE INDEX IF NOT EXISTS journal_kind ON journal (kind, seq);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS apps (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);
-- The package as one BLOB (before content versions), its content not carried over.
DROP TABLE IF EXISTS app_content;
-- The content a device downloads for an app: a committed content file, and the
-- Detection.xml made of its encryption info and the app's setup file.
CREATE TABLE IF NOT EXISTS app_packages (
    app_id TEXT PRIMARY KEY,
    file_id TEXT NOT NULL,
    detection TEXT NOT NULL,
    committed_at TEXT NOT NULL
);
-- Graph's contentVersions, numbered per app from 1.
CREATE TABLE IF NOT EXISTS content_versions (
    app_id TEXT NOT NULL,
    id INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (app_id, id)
);
-- Graph's mobileAppContentFile: its upload state, the blob's committed block list (JSON)
-- and, once committed, its fileEncryptionInfo (JSON).
CREATE TABLE IF NOT EXISTS content_files (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    size_encrypted INTEGER NOT NULL,
    is_dependency INTEGER NOT NULL,
    upload_state TEXT NOT NULL,
    upload_expires TEXT NOT NULL,
    block_list TEXT,
    encryption TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS content_files_version ON content_files (app_id, version);
-- A blob's bytes: each block put to its upload URI, cut into chunks of at most 1 MiB.
CREATE TABLE IF NOT EXISTS content_chunks (
    file_id TEXT NOT NULL,
    block_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    len INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (file_id, block_id, seq)
);
CREATE TABLE IF NOT EXISTS app_assignments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id TEXT NOT NULL,
    intent TEXT NOT NULL,
    target TEXT NOT NULL,
    start_at TEXT,
    deadline_at TEXT
);
CREATE INDEX IF NOT EXISTS app_assignments_app ON app_assignments (app_id);
CREATE TABLE IF NOT EXISTS app_assignment_settings (
    assignment_id INTEGER PRIMARY KEY,
    notifications TEXT NOT NULL,
    grace_period INTEGER,
    countdown INTEGER,
    snooze INTEGER
);
CREATE TABLE IF NOT EXISTS app_status (
    device_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    compliance INTEGER NOT NULL,
    enforcement INTEGER NOT NULL,
    error_code INTEGER NOT NULL,
    report TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (device_id, app_id)
);
CREATE TABLE IF NOT EXISTS scripts (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS script_assignments (
    script_id TEXT NOT NULL,
    target TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS script_assignments_script ON script_assignments (script_id);
CREATE TABLE IF NOT EXISTS script_states (
    device_id TEXT NOT NULL,
    script_id TEXT NOT NULL,
    result TEXT NOT NULL,
    error_code INTEGER NOT NULL,
    details TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (device_id, script_id)
);
CREATE TABLE IF NOT EXISTS health_scripts (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS health_script_assignments (
    script_id TEXT NOT NULL,
    target TEXT NOT NULL,
    settings TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS health_script_assignments_script ON health_script_assignments (script_id);
CREATE TABLE IF NOT EXISTS health_script_states (
    device_id TEXT NOT NULL,
    script_id TEXT NOT NULL,
    detection_state TEXT NOT NULL,
    remediation_state TEXT NOT NULL,
    result TEXT NOT NULL,
    runs INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (device_id, script_id)
);
CREATE TABLE IF NOT EXISTS compliance_scripts (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS compliance_script_assignments (
    script_id TEXT NOT NULL,
    target TEXT NOT NULL,
    settings TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS compliance_policies (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS compliance_policy_assignments (
    script_id TEXT NOT NULL,
    target TEXT NOT NULL,
    settings TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS compliance_policy_assignments_policy ON compliance_policy_assignments (script_id);
CREATE TABLE IF NOT EXISTS compliance_policy_states (
    device_id TEXT NOT NULL,
    script_id TEXT NOT NULL,
    state TEXT NOT NULL,
    settings TEXT NOT NULL,
    output TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (device_id, script_id)
);
CREATE TABLE IF NOT EXISTS esp_profiles (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS esp_profile_assignments (
    script_id TEXT NOT NULL,
    target TEXT NOT NULL,
    settings TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS esp_profile_states (
    device_id TEXT NOT NULL,
    script_id TEXT NOT NULL,
    PRIMARY KEY (device_id, script_id)
);
CREATE TABLE IF NOT EXISTS agent_health (
    device_id TEXT PRIMARY KEY,
    ime_version TEXT NOT NULL,
    health_state TEXT NOT NULL,
    report TEXT NOT NULL,
    reported_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS device_inventory (
    device_id TEXT NOT NULL,
    program_id TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    publisher TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (device_id, program_id)
);
CREATE TABLE IF NOT EXISTS received_reports (
    device_id TEXT NOT NULL,
    report_id TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (device_id, report_id)
);
CREATE TABLE IF NOT EXISTS directory_groups (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    modified_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS group_members (
    group_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (group_id, member_id)
);
CREATE TABLE IF NOT EXISTS device_users (
    device_id TEXT NOT NULL,
    user_principal_name TEXT NOT NULL,
    last_logon_at TEXT NOT NULL,
    PRIMARY KEY (device_id, user_principal_name)
);
