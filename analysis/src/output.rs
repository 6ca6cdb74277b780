//! Output builder.
