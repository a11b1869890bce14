//! Scenario files: devices, apps, steps and expectations.
