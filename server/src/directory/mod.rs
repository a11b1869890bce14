//! Entra ID as far as Intune's targeting needs it: each enrolled device's Entra device
//! object, users, and security groups whose members (devices and users) receive what is
//! assigned to the group. A device is in a group when its Entra device object or its
//! primary user is a direct member (nested groups are not followed). Exclusion groups
//! subtract: an app or script whose assignments include a device through one target
//! does not reach it when an exclusion group holds the device or its user.
//!
//! It sits below the rooms that target (apps, scripts, enrollment); its admin routes
//! (`/groups`, `/devices`, `/users`) are in [`admin`].

pub(crate) mod admin;
pub mod targets;

use std::collections::BTreeSet;

use crate::storage::{Device, MemberRow};

/// Stored target of an include group assignment: `group:<id>`.
pub const GROUP: &str = "group";
/// Stored target of an exclusion group assignment: `exclude:<id>`.
pub const EXCLUDE: &str = "exclude";

/// A device's Entra device object id (the managed device's `azureADDeviceId` is the
/// device id; the directory object has an id of its own, as in Entra).
pub fn device_object_id(device_id: &str) -> String {
    syncml::entra::object_id(&format!("device:{}", device_id.to_ascii_uppercase()))
}

/// A user's Entra object id, from their user principal name (the same the device
/// keeps the user's state under).
pub fn user_object_id(upn: &str) -> String {
    syncml::entra::user_object_id(upn)
}

/// A member's kind as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An Entra device object.
    Device,
    /// A user.
    User,
}

impl Kind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Device => "device",
            Kind::User => "user",
        }
    }
}

/// A device as targeting sees it: the device, its primary user, and the groups each
/// of them is a direct member of.
#[derive(Debug)]
pub struct Audience<'a> {
    /// The device.
    pub device: &'a Device,
    device_groups: BTreeSet<String>,
    user_groups: BTreeSet<String>,
}

impl<'a> Audience<'a> {
    /// The device with its memberships, from every group's members.
    pub fn of(device: &'a Device, members: &[MemberRow]) -> Self {
        let me = device_object_id(&device.id);
        let user = (!device.user_principal_name.is_empty())
            .then(|| user_object_id(&device.user_principal_name));
        let groups = |kind: Kind, id: Option<&str>| -> BTreeSet<String> {
            members
                .iter()
                .filter(|m| m.kind == kind.as_str() && Some(m.member_id.as_str()) == id)
                .map(|m| m.group_id.clone())
                .collect()
        };
        Audience {
            device,
            device_groups: groups(Kind::Device, Some(&me)),
            user_groups: groups(Kind::User, user.as_deref()),
        }
    }

    /// True when the group holds the device or its user.
    pub fn in_group(&self, id: &str) -> bool {
        self.device_groups.contains(id) || self.user_groups.contains(id)
    }

    /// True when a stored target (`allDevices`, `allUsers`, `device:<id>`,
    /// `user:<upn>`, `group:<id>`) includes the device; exclusions include no one.
    pub fn includes(&self, target: &str) -> bool {
        let device = self.device;
        match target.split_once(':') {
            None => match target {
                "allDevices" => true,
                "allUsers" => !device.user_principal_name.is_empty(),
                _ => false,
            },
            Some(("device", id)) => id.eq_ignore_ascii_case(&device.id),
            Some(("user", upn)) => upn.eq_ignore_ascii_case(&device.user_principal_name),
            Some((GROUP, id)) => self.in_group(id),
            Some(_) => false,
        }
    }

    /// True when the target reaches the device through its user rather than the
    /// device itself (the IME's TargetType 1).
    pub fn through_user(&self, target: &str) -> bool {
        match target.split_once(':') {
            None => target == "allUsers",
            Some(("user", _)) => true,
            Some((GROUP, id)) => !self.device_groups.contains(id) && self.user_groups.contains(id),
            Some(_) => false,
        }
    }

    /// True when an exclusion target among these holds the device.
    pub fn excluded_by<'t>(&self, targets: impl IntoIterator<Item = &'t str>) -> bool {
        targets.into_iter().any(|t| {
            t.split_once(':')
                .is_some_and(|(kind, id)| kind == EXCLUDE && self.in_group(id))
        })
    }

    /// True when the assignments of one app or script reach the device: one of them
    /// includes it and no exclusion holds it.
    pub fn reached_by<'t>(&self, targets: impl IntoIterator<Item = &'t str> + Clone) -> bool {
        targets.clone().into_iter().any(|t| self.includes(t)) && !self.excluded_by(targets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(id: &str, upn: &str) -> Device {
        Device {
            id: id.into(),
            user_principal_name: upn.into(),
            ..Device::default()
        }
    }

    fn member(group: &str, kind: Kind, id: &str) -> MemberRow {
        MemberRow {
            group_id: group.into(),
            member_id: id.into(),
            kind: kind.as_str().into(),
            name: String::new(),
        }
    }

    #[test]
    fn a_group_reaches_its_devices_and_its_users_devices() {
        let a = device("AAAA", "ada@contoso.com");
        let b = device("BBBB", "bob@contoso.com");
        let members = [
            member("g1", Kind::Device, &device_object_id("AAAA")),
            member("g2", Kind::User, &user_object_id("Bob@Contoso.com")),
        ];
        let (a, b) = (Audience::of(&a, &members), Audience::of(&b, &members));
        assert!(a.includes("group:g1") && !a.includes("group:g2"));
        assert!(b.includes("group:g2") && !b.includes("group:g1"));
        assert!(!a.through_user("group:g1") && b.through_user("group:g2"));
    }

    #[test]
    fn an_exclusion_group_subtracts_from_every_include() {
        let a = device("AAAA", "ada@contoso.com");
        let members = [member("lab", Kind::Device, &device_object_id("aaaa"))];
        let a = Audience::of(&a, &members);
        assert!(a.reached_by(["allDevices"]));
        assert!(!a.reached_by(["allDevices", "exclude:lab"]));
        assert!(
            !a.reached_by(["exclude:lab"]),
            "an exclusion alone includes no one"
        );
        assert!(a.reached_by(["allDevices", "exclude:other"]));
    }

    #[test]
    fn object_ids_are_stable_and_distinct() {
        assert_eq!(device_object_id("abc"), device_object_id("ABC"));
        assert_ne!(device_object_id("ABC"), user_object_id("ABC"));
        assert_ne!(device_object_id("ABC"), "ABC");
    }
}
