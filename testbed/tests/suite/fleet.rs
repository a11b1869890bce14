//! `tenantless fleet` runs its whole workload on every device: the app (through one
//! 1618 retry), the script, the daily inventory.

#[tokio::test]
async fn every_device_of_a_fleet_gets_the_workload() {
    let mut out = Vec::new();
    let report = testbed::fleet::run(3, 2, 5, &mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(report.app_installs, 3, "{text}");
    assert_eq!(report.script_results, 3, "{text}");
    assert_eq!(
        report.inventories, 9,
        "at start, after a day and after two: {text}"
    );
    assert!(text.contains("3 devices x 2 days"), "{text}");
}
