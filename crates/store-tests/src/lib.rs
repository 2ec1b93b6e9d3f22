//! Nothing here: the storage conformance suite is `tests/conformance.rs`.
//! It runs every scenario against SQLite, and against PostgreSQL when
//! `LATCHKEY_TEST_POSTGRES_URL` names a server it may create databases on.
