//! MS-MDE2 enrollment: discovery, policy and the certificate request.
