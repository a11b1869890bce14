//! The enrollment client: discovery, policy, certificate request.
