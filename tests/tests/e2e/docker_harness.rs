//! Tests of the docker harness itself ([`credd_tests::docker`]), no credd involved: the engine
//! and the offline image, boto3 and the AWS CLI inside a container reaching moto (auth on)
//! through the STS relay, user-defined networks with fixed addresses, what a container's
//! connection to the host looks like (its own address, no NAT: what credd's gateway listener
//! checks), and the clean-up of containers and networks. The first run installs docker.io,
//! busybox-static and the containers' venv when missing (as root).

use std::io::{Read, Write};
use std::net::TcpListener;

use credd_tests::docker::{Engine, IDLE, IMAGE};
use credd_tests::moto::{Auth, Moto, REGION, SeedSpec};
use credd_tests::sdk::BOTO3_CALLER;

#[test]
fn the_image_runs_busybox_boto3_and_the_aws_cli_which_reach_moto_through_the_relay() {
    let engine = Engine::get();
    let out = engine.run(&[], &["sh", "-c", "which sh wget sleep aws"]);
    assert!(out.success(), "{out}");
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["/bin/sh", "/bin/wget", "/bin/sleep", "/bin/aws"],
        "{out}"
    );

    let moto = Moto::shared(Auth::On);
    let seeded = moto.seed(&SeedSpec::new().user("carol"));
    let carol = seeded.user("carol");
    let sts = format!("AWS_ENDPOINT_URL_STS={}", engine.sts_endpoint(moto.port()));
    let key = format!("AWS_ACCESS_KEY_ID={}", carol.access_key_id);
    let secret = format!("AWS_SECRET_ACCESS_KEY={}", carol.secret_access_key);
    // AWS_DEFAULT_REGION: the AWS CLI v1 reads no AWS_REGION.
    let region = format!("AWS_DEFAULT_REGION={REGION}");
    let env = [
        "-e",
        &sts,
        "-e",
        &key,
        "-e",
        &secret,
        "-e",
        &region,
        "-e",
        // Nothing else may answer for credentials.
        "AWS_EC2_METADATA_DISABLED=true",
    ];

    let out = engine.run(&env, &["python3", "-c", BOTO3_CALLER]);
    assert!(out.success(), "boto3 in a container: {out}");
    let boto3 = out.json();
    assert_eq!(boto3["arn"].as_str(), Some(carol.arn.as_str()), "{out}");
    assert_eq!(boto3["method"], "env", "{out}");

    let out = engine.run(
        &env,
        &["aws", "sts", "get-caller-identity", "--output", "json"],
    );
    assert!(out.success(), "the AWS CLI in a container: {out}");
    assert_eq!(
        out.json()["Arn"].as_str(),
        Some(carol.arn.as_str()),
        "{out}"
    );

    // moto checks the signature through the relay: a wrong secret is refused.
    let wrong = format!("AWS_SECRET_ACCESS_KEY={}x", carol.secret_access_key);
    let env = ["-e", &sts, "-e", &key, "-e", &wrong, "-e", &region];
    let out = engine.run(&env, &["aws", "sts", "get-caller-identity"]);
    assert!(!out.success(), "a wrong secret is refused: {out}");
    assert!(
        out.stderr.contains("SignatureDoesNotMatch") || out.stderr.contains("InvalidClientTokenId"),
        "{out}"
    );

    // What is mounted is read-only.
    let venv = engine.venv().display().to_string();
    let out = engine.run(&[], &["sh", "-c", &format!("touch {venv}/written")]);
    assert!(
        !out.success(),
        "the venv is writable from a container: {out}"
    );
}

#[test]
fn a_network_has_its_subnet_fixed_addresses_and_the_host_sees_each_container_by_its_address() {
    let engine = Engine::get();
    let network = engine.network();
    let name = network.name().to_owned();
    let subnet = engine.docker_ok(&[
        "network",
        "inspect",
        &name,
        "--format",
        "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}",
    ]);
    assert_eq!(
        subnet,
        format!("{} {}", network.subnet(), network.gateway())
    );

    let fixed = network.fixed_ip(0);
    let a = engine.start(&["--network", &name, "--ip", &fixed], IDLE);
    assert_eq!(a.ip(&name), fixed);
    assert!(a.running());
    assert_eq!(a.id().len(), 64, "a full container ID");
    assert_eq!(a.inspect("{{.Config.Image}}"), IMAGE);
    let b = engine.start(&["--network", &name], IDLE);
    let b_ip = b.ip(&name);
    let last: u8 = b_ip
        .strip_prefix(&format!("{}.", network.gateway().trim_end_matches(".1")))
        .and_then(|octet| octet.parse().ok())
        .unwrap_or_else(|| panic!("{b_ip} is not in {}", network.subnet()));
    assert!((2..128).contains(&last), "handed out below .128: {b_ip}");

    // A listener on the network's gateway (as credd's) sees the container's own address.
    let listener = TcpListener::bind((network.gateway().as_str(), 0)).expect("bind the gateway");
    let url = format!("http://{}/", listener.local_addr().expect("its address"));
    let peer = std::thread::spawn(move || {
        let (mut stream, peer) = listener.accept().expect("a connection from the container");
        let mut request = [0u8; 1024];
        let _ = stream.read(&mut request);
        let _ = stream.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        peer.ip().to_string()
    });
    let out = b.exec(&["wget", "-q", "-O", "-", &url]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "hello"), "{out}");
    assert_eq!(peer.join().expect("the listener thread"), b_ip);

    // docker stop ends IDLE through its SIGTERM trap (exit 0), not by the SIGKILL after docker's
    // grace (137); the fixed address is free again once the container is gone.
    a.stop();
    assert!(!a.running());
    assert_eq!(
        a.inspect("{{.State.ExitCode}}"),
        "0",
        "IDLE ignored SIGTERM: docker stop killed it after its grace"
    );
    a.remove();
    let c = engine.start(&["--network", &name, "--ip", &fixed], IDLE);
    assert_eq!(c.ip(&name), fixed, "the address is reused");

    let (b_name, c_name) = (b.name().to_owned(), c.name().to_owned());
    drop(network); // removes the containers left on it
    for gone in [&b_name, &c_name] {
        let out = engine.run_docker(&["inspect", "--type", "container", gone]);
        assert!(!out.success(), "{gone} was removed with its network: {out}");
    }
    let out = engine.run_docker(&["network", "inspect", &name]);
    assert!(!out.success(), "the network is removed: {out}");
    drop((b, c));
}

#[test]
fn containers_are_removed_when_dropped_and_carry_the_test_process_label() {
    let engine = Engine::get();
    let started = engine.start(&[], IDLE);
    // A name reserved for a container something else starts (as `credd docker run` does).
    let reserved = engine.reserve();
    engine.docker_ok(&[
        "run",
        "-d",
        "--name",
        reserved.name(),
        IMAGE,
        "sleep",
        "600",
    ]);
    assert!(started.exists() && reserved.exists());
    let label = started.inspect("{{index .Config.Labels \"credd-tests.pid\"}}");
    assert_eq!(label, std::process::id().to_string());
    let mut program = started.python_program(
        "import sys\nfor line in sys.stdin:\n    print(line.strip().upper(), flush=True)\n",
        &[],
    );
    assert_eq!(program.ask("ping"), "PING");
    drop(program);

    let names = [started.name().to_owned(), reserved.name().to_owned()];
    drop((started, reserved));
    for name in names {
        let out = engine.run_docker(&["inspect", "--type", "container", &name]);
        assert!(!out.success(), "{name} is removed on drop: {out}");
    }
}
