//! The IME's state numbers by name (spec section 6): what the registry's state messages
//! hold, as the reporting manager and the talk's "state message magic" call them.

/// `ComplianceState`: 1 Installed, 2 NotInstalled, 4 Error, 5 Unknown, 100 Cleanup.
pub fn compliance(state: i64) -> &'static str {
    match state {
        1 => "Installed",
        2 => "NotInstalled",
        4 => "Error",
        100 => "Cleanup",
        _ => "Unknown",
    }
}

/// `DesiredState`: 0 None, 1 NotPresent, 2 Present, 3 Unknown, 4 Available.
pub fn desired(state: i64) -> &'static str {
    match state {
        0 => "None",
        1 => "NotPresent",
        2 => "Present",
        4 => "Available",
        _ => "Unknown",
    }
}

/// `Applicability`: 0 Applicable, or why the app does not apply.
pub fn applicability(code: i64) -> &'static str {
    match code {
        0 => "Applicable",
        1 => "RequirementsNotMet",
        3 => "HostPlatformNotApplicable",
        1000 => "ProcessorArchitectureNotApplicable",
        1001 => "MinimumDiskSpaceNotMet",
        1002 => "MinimumOSVersionNotMet",
        1003 => "MinimumPhysicalMemoryNotMet",
        1004 => "MinimumLogicalProcessorCountNotMet",
        1005 => "MinimumCPUSpeedNotMet",
        1006 => "FileSystemRequirementRuleNotMet",
        1007 => "RegistryRequirementRuleNotMet",
        1008 => "ScriptRequirementRuleNotMet",
        1010 => "NotTargetedAssignmentFilter",
        _ => "Unknown",
    }
}

/// `EnforcementState` in the reporting manager's words.
pub fn enforcement(state: i64) -> &'static str {
    match state {
        1003 => "SuccessFastNotify",
        1000..=1018 => "Success",
        2001 => "InProgressWaitingContent",
        2002 => "InProgressInstalling",
        2003 => "InProgressWaitingReboot",
        2007 => "InProgressDependencyInstalling",
        2008 => "InProgressPendingReboot",
        2009 => "InProgressDownloadCompleted",
        2000..=2999 => "InProgress",
        3000..=3999 => "RequirementsNotMet",
        4000..=4999 => "Unknown",
        5003 => "ErrorDownloadingContent",
        5006 => "ErrorRetryWaiting",
        5999 => "ErrorWithImmediateRetry",
        5000..=5998 => "Error",
        6001 => "NotAttemptedDependencyWithFailure",
        6000..=6999 => "NotAttempted",
        _ => "Unknown",
    }
}

/// A return code type: 0 Failed, 1 Success, 2 SoftReboot, 3 HardReboot, 4 Retry.
pub fn return_code_type(kind: i64) -> &'static str {
    match kind {
        1 => "Success",
        2 => "SoftReboot",
        3 => "HardReboot",
        4 => "Retry",
        _ => "Failed",
    }
}

/// What a well-known installer exit code means (Windows Installer's own words).
pub fn exit_code_meaning(code: i64) -> Option<&'static str> {
    Some(match code {
        0 => "the action completed successfully",
        1602 => "the user cancelled the installation",
        1603 => "a fatal error occurred during installation",
        1618 => "another installation is already in progress",
        1619 => "the installation package could not be opened",
        1633 => "the platform is not supported",
        1638 => "another version of this product is already installed",
        1641 => "the installer started a restart",
        1707 => "the installation completed successfully",
        3010 => "a restart is required to complete the installation",
        _ => return None,
    })
}
