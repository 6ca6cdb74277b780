//! Test support for serin.
