//! The Intune Management Extension, installed by the EnterpriseDesktopAppManagement CSP.
