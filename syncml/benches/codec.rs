//! Parse and serialise throughput of SyncML messages: a typical package 1 from a
//! device, and a server message carrying 100 commands. Run: `cargo bench -p syncml`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use syncml::dm::{Command, Item, ItemCommand, Location, Meta, ReplyBuilder, StatusCode, SyncMl};

fn package_one() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/syncml_package1.xml"
    );
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn hundred_commands() -> Vec<u8> {
    let request = SyncMl::parse(&package_one()).expect("fixture parses");
    let mut reply = ReplyBuilder::new(&request.hdr, "1");
    reply.header_status(&request.hdr, StatusCode::Ok, None);
    reply.acknowledge(&request, |_| StatusCode::Ok);
    for n in 0..100 {
        let uri = format!("./Device/Vendor/MSFT/Policy/Config/Tenantless/Setting{n}");
        let mut item = Item::target(uri);
        item.meta = Some(Meta {
            format: Some("int".into()),
            type_: Some("text/plain".into()),
            ..Meta::default()
        });
        item.data = Some(syncml::dm::Data::Text(n.to_string()));
        let cmd = ItemCommand {
            items: vec![item],
            ..ItemCommand::default()
        };
        reply.command(match n % 3 {
            0 => Command::Add(cmd),
            1 => Command::Replace(cmd),
            _ => Command::Get(ItemCommand {
                items: vec![Item {
                    target: Some(Location::uri(format!("./DevDetail/Ext/Tenantless/Node{n}"))),
                    ..Item::default()
                }],
                ..ItemCommand::default()
            }),
        });
    }
    reply.build().to_xml().into_bytes()
}

/// Runs `f` repeatedly for about a second; returns MB/s for `bytes` per run, and runs/s.
fn throughput(bytes: usize, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..50 {
        f();
    }
    let budget = Duration::from_millis(1000);
    let start = Instant::now();
    let mut runs = 0u64;
    while start.elapsed() < budget {
        f();
        runs += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let per_sec = runs as f64 / secs;
    (bytes as f64 * per_sec / 1e6, per_sec)
}

fn main() {
    for (name, bytes) in [
        ("package 1 (device)", package_one()),
        ("100-command server message", hundred_commands()),
    ] {
        let msg = SyncMl::parse(&bytes).expect("benchmark input parses");
        let (parse, per_sec) = throughput(bytes.len(), || {
            black_box(SyncMl::parse(black_box(&bytes)).ok());
        });
        let (emit, _) = throughput(bytes.len(), || {
            black_box(black_box(&msg).to_xml());
        });
        println!(
            "{name:<28} {:>7} bytes  parse {parse:>8.1} MB/s ({:>8.0} msg/s)  serialise {emit:>8.1} MB/s",
            bytes.len(),
            per_sec,
        );
    }
}
