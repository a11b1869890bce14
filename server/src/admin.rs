//! The admin API, in Microsoft Graph's resource shapes.
