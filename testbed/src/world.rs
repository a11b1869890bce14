//! The world clock and everything it drives.
