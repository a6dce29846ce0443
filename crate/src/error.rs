//! Typed errors: a stable code for programs, a message naming the field for people.

use std::fmt;

/// What kind of failure an [`Error`] is; the code string is part of the public API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// A vector's length differs from the collection's dimension.
    DimensionMismatch,
    /// A vector is empty, holds NaN or Infinity, or is zero under cosine.
    InvalidVector,
    /// Metadata is not a JSON object, or is larger than [`crate::MAX_METADATA_BYTES`].
    InvalidMetadata,
    /// Any other argument out of its domain: k, metric, filter, id, name.
    InvalidArgument,
    /// The named collection does not exist.
    NotFound,
    /// The database was closed.
    Closed,
    /// SQLite failed underneath; the message carries its text.
    Storage,
    /// The write needs more space than storage allows (the origin's quota, or the
    /// database's own cap); the batch was not written.
    QuotaExceeded,
    /// Bytes given as a quiver database file are not one: not SQLite, damaged, or
    /// without quiver's tables.
    CorruptDatabase,
    /// The database was written by a newer quiver, with a schema this build does not
    /// know; it was left untouched.
    UnsupportedVersion,
    /// Bytes given as a sync frame are not one: a bad type, a truncated or
    /// inconsistent payload, a field out of its domain (see [`crate::sync::wire`]).
    MalformedFrame,
    /// A sync frame, or a batch in it, is larger than [`crate::sync::wire`]'s limits.
    FrameTooLarge,
}

impl Code {
    /// Every code, in declaration order: the one list that the JS side's lists
    /// (`js/errors.js`, `js/index.d.ts`) are checked against. A new code goes here too.
    pub const ALL: [Code; 12] = [
        Code::DimensionMismatch,
        Code::InvalidVector,
        Code::InvalidMetadata,
        Code::InvalidArgument,
        Code::NotFound,
        Code::Closed,
        Code::Storage,
        Code::QuotaExceeded,
        Code::CorruptDatabase,
        Code::UnsupportedVersion,
        Code::MalformedFrame,
        Code::FrameTooLarge,
    ];

    /// The stable string form, e.g. `"DIMENSION_MISMATCH"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::DimensionMismatch => "DIMENSION_MISMATCH",
            Code::InvalidVector => "INVALID_VECTOR",
            Code::InvalidMetadata => "INVALID_METADATA",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::NotFound => "NOT_FOUND",
            Code::Closed => "CLOSED",
            Code::Storage => "STORAGE",
            Code::CorruptDatabase => "CORRUPT_DATABASE",
            Code::QuotaExceeded => "QUOTA_EXCEEDED",
            Code::UnsupportedVersion => "UNSUPPORTED_VERSION",
            Code::MalformedFrame => "MALFORMED_FRAME",
            Code::FrameTooLarge => "FRAME_TOO_LARGE",
        }
    }
}

/// An error with a [`Code`] and a message that names the offending field.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    pub code: Code,
    pub message: String,
}

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(Code::InvalidArgument, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        // The OPFS VFS reports the browser's QuotaExceededError as SQLITE_FULL.
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            return Error::new(Code::QuotaExceeded, format!("storage: out of space: {e}"));
        }
        Error::new(Code::Storage, e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed_once_with_its_own_string() {
        for (i, a) in Code::ALL.iter().enumerate() {
            for b in &Code::ALL[i + 1..] {
                assert!(a != b && a.as_str() != b.as_str(), "{a:?} and {b:?}");
            }
        }
    }
}
