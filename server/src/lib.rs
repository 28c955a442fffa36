//! Tapkit attribution server: the data it keeps about programs, affiliates and their
//! cards, and (next) the admin API and the `/r/{code}` hop.
//!
//! Built so far: [`store`], the one storage interface over a SQLite file or PostgreSQL.

pub mod store;
