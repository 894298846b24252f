//! `credd docker` against a scripted stand-in for the daemon and a stand-in for docker
//! (`CREDD_DOCKER`): what docker is given and how (the grant only in its environment), what the
//! daemon is asked, exit codes, and Ctrl-C while the container runs. No engine, no daemon.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{FakeDaemon, access, text};
use credd_proto::docker::{DockerStatus, Grant, GrantRequest, RevokeRequest};
use credd_proto::{
    ConfigInfo, EndpointInfo, ErrorCode, ErrorReply, PathsInfo, Request, Response, Secret,
    StatusReport,
};

const SECRET: &str = "9b1f0c6a2d4e8f7a3c5b1d9e0f2a4c6b8d0e2f4a6c8b0d2e4f6a8c0b2d4e6f8a";
const GRANT_ID: &str = "3f2a9c";

/// A daemon that grants, revokes, and says where the profile is served.
fn daemon() -> FakeDaemon {
    FakeDaemon::start(|request, _| match request {
        Request::Endpoint { profile } => Response::Endpoint(EndpointInfo {
            profile,
            url: "http://127.0.0.1:9911/v1/credentials".into(),
            region: None,
            imds_url: None,
            needs_login: false,
        }),
        Request::DockerGrant(g) => Response::DockerGrant(Grant {
            secret: Secret::new(SECRET),
            id: GRANT_ID.into(),
            profile: g.profile.unwrap_or_else(|| "current".into()),
            endpoint: "http://172.17.0.1:9912/".into(),
            network: g.network.unwrap_or_else(|| "bridge".into()),
            region: Some("eu-west-1".into()),
            standing: g.standing,
        }),
        Request::DockerRevoke(r) => Response::DockerRevoked {
            grants: if r.all {
                vec![GRANT_ID.into(), "77aa01".into()]
            } else {
                r.id.into_iter().collect()
            },
            containers: 1,
        },
        other => panic!("unexpected request {other:?}"),
    })
}

/// A `docker` that writes its arguments (one a line) and its CREDD_GRANT into `dir`, then runs
/// `then` (shell).
fn fake_docker(dir: &Path, then: &str) -> PathBuf {
    let path = dir.join("docker");
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{0}/argv'\nprintf '%s' \"$CREDD_GRANT\" > \
         '{0}/grant'\n{then}\n",
        dir.display()
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, PermissionsExt::from_mode(0o755)).unwrap();
    path
}

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn revoke_unclaimed() -> Request {
    Request::DockerRevoke(RevokeRequest {
        id: Some(GRANT_ID.into()),
        all: false,
        unclaimed_only: true,
    })
}

#[test]
fn docker_run_hands_the_grant_over_in_the_environment_and_passes_the_exit_code_through() {
    let daemon = daemon();
    let dir = tempfile::tempdir().unwrap();
    let docker = fake_docker(dir.path(), "exit 3");
    let out = daemon
        .credd(
            &[
                "docker",
                "run",
                "--profile",
                "staging",
                "--",
                "-it",
                "--rm",
                "--net=dev",
                "img",
                "aws",
                "sts",
            ],
            &[
                ("CREDD_DOCKER", &docker.display().to_string()),
                ("DOCKER_HOST", "unix:///run/user/1000/docker.sock"),
            ],
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let argv = read(dir.path().join("argv"));
    assert_eq!(
        argv.lines().collect::<Vec<_>>(),
        [
            "run",
            "-e",
            "CREDD_GRANT",
            "-e",
            "AWS_EC2_METADATA_SERVICE_ENDPOINT=http://172.17.0.1:9912/",
            "-e",
            "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv4",
            "-e",
            "AWS_EC2_METADATA_DISABLED=false",
            "-e",
            "AWS_REGION=eu-west-1",
            "-e",
            "AWS_DEFAULT_REGION=eu-west-1",
            "-it",
            "--rm",
            "--net=dev",
            "img",
            "aws",
            "sts",
        ]
    );
    assert_eq!(read(dir.path().join("grant")), SECRET);
    assert!(!text(&out.stdout).contains(SECRET) && !text(&out.stderr).contains(SECRET));
    assert_eq!(
        daemon.seen.requests(),
        [
            Request::Endpoint {
                profile: Some("staging".into())
            },
            Request::DockerGrant(GrantRequest {
                profile: Some("staging".into()),
                network: Some("dev".into()),
                standing: false,
                docker_host: Some("unix:///run/user/1000/docker.sock".into()),
            }),
            revoke_unclaimed(),
        ]
    );
}

#[test]
fn ctrl_c_goes_to_docker_and_credd_stays_to_revoke() {
    let daemon = daemon();
    let dir = tempfile::tempdir().unwrap();
    // `exec`: the pid written is the one that then waits, with SIGINT as credd gave it.
    let pid_file = dir.path().join("pid");
    let docker = fake_docker(
        dir.path(),
        &format!("echo $$ > '{}'; exec sleep 30", pid_file.display()),
    );
    let mut credd = daemon
        .credd(
            &["docker", "run", "img"],
            &[("CREDD_DOCKER", &docker.display().to_string())],
        )
        .spawn()
        .unwrap();
    assert!(
        daemon
            .seen
            .poll(|_| read(&pid_file).ends_with('\n'), Duration::from_secs(10)),
        "docker started"
    );
    let docker_pid: i32 = read(&pid_file).trim().parse().unwrap();
    let credd_pid = credd.id() as i32;
    // SAFETY: signals to the processes this test started.
    unsafe {
        libc::kill(credd_pid, libc::SIGINT);
        libc::kill(credd_pid, libc::SIGQUIT);
        libc::kill(docker_pid, libc::SIGINT);
    }
    let status = credd.wait().unwrap();
    assert_eq!(status.signal(), None, "credd ignored them: {status:?}");
    assert_eq!(status.code(), Some(130), "docker's end: 128 + SIGINT");
    let requests = daemon.seen.requests();
    assert_eq!(requests.last(), Some(&revoke_unclaimed()), "{requests:?}");
}

#[test]
fn docker_run_refuses_the_host_network_before_asking_anything() {
    let daemon = daemon();
    let out = daemon
        .credd(
            &[
                "docker",
                "run",
                "--profile",
                "prod",
                "-it",
                "--network",
                "host",
                "img",
            ],
            &[("CREDD_DOCKER", "/nonexistent/docker")],
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("credd: credd docker cannot serve `--network host`"),
        "{stderr}"
    );
    assert!(stderr.contains("credd exec prod -- sh -c 'exec docker run --network host"));
    assert!(daemon.seen.requests().is_empty());
}

#[test]
fn a_docker_that_is_not_there_exits_127_and_its_grant_is_revoked() {
    let daemon = daemon();
    let out = daemon
        .credd(
            &["docker", "run", "img"],
            &[("CREDD_DOCKER", "/nonexistent/docker")],
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "credd: cannot run /nonexistent/docker: command not found\n"
    );
    assert_eq!(daemon.seen.requests().last(), Some(&revoke_unclaimed()));
}

#[test]
fn docker_env_prints_an_env_file_with_a_standing_grant() {
    let daemon = daemon();
    let out = daemon
        .credd(&["docker", "env", "staging", "--network", "dev"], &[])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let file = text(&out.stdout);
    assert!(file.starts_with("# credd docker env: "), "{file}");
    assert!(file.contains("`credd docker revoke 3f2a9c`"), "{file}");
    assert!(
        file.ends_with(&format!("\nCREDD_GRANT={SECRET}\n")),
        "{file}"
    );
    assert!(
        file.contains("\nAWS_EC2_METADATA_SERVICE_ENDPOINT=http://172.17.0.1:9912/\n"),
        "{file}"
    );
    // stdout is no terminal here: no note.
    assert_eq!(text(&out.stderr), "");
    assert_eq!(
        daemon.seen.requests()[1],
        Request::DockerGrant(GrantRequest {
            profile: Some("staging".into()),
            network: Some("dev".into()),
            standing: true,
            docker_host: None,
        })
    );
    let out = daemon
        .credd(&["--json", "docker", "env"], &[])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["id"], GRANT_ID);
    assert_eq!(json["standing"], true);
    assert_eq!(json["environment"]["CREDD_GRANT"], SECRET);
    assert_eq!(
        json["environment"]["AWS_EC2_METADATA_SERVICE_ENDPOINT"],
        "http://172.17.0.1:9912/"
    );
}

#[test]
fn docker_revoke_says_what_it_cut_off() {
    let daemon = daemon();
    let out = daemon
        .credd(&["docker", "revoke", "--all"], &[])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "revoked 2 grants: 3f2a9c, 77aa01; 1 container cut off\n"
    );
    assert_eq!(
        daemon.seen.requests(),
        [Request::DockerRevoke(RevokeRequest {
            id: None,
            all: true,
            unclaimed_only: false,
        })]
    );
    let out = daemon
        .credd(&["--json", "docker", "revoke", GRANT_ID], &[])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json,
        serde_json::json!({ "grants": [GRANT_ID], "containers": 1 })
    );
}

#[test]
fn without_the_loopback_http_api_docker_run_goes_ahead() {
    let daemon = FakeDaemon::start(|request, _| match request {
        Request::Endpoint { .. } => Response::Error(ErrorReply::new(
            ErrorCode::Unavailable,
            "the HTTP credentials API is not running",
        )),
        Request::DockerGrant(_) => Response::DockerGrant(Grant {
            secret: Secret::new(SECRET),
            id: GRANT_ID.into(),
            profile: "prod".into(),
            endpoint: "http://172.17.0.1:9912/".into(),
            network: "bridge".into(),
            region: None,
            standing: false,
        }),
        Request::DockerRevoke(_) => Response::DockerRevoked {
            grants: vec![],
            containers: 0,
        },
        other => panic!("unexpected request {other:?}"),
    });
    let dir = tempfile::tempdir().unwrap();
    let docker = fake_docker(dir.path(), "exit 0");
    let out = daemon
        .credd(
            &["docker", "run", "img"],
            &[("CREDD_DOCKER", &docker.display().to_string())],
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(read(dir.path().join("grant")), SECRET);
}

fn status(docker: Option<DockerStatus>) -> StatusReport {
    StatusReport {
        daemon_version: "0.1.0".into(),
        pid: 1,
        started_at: 0,
        paths: PathsInfo {
            config: "/c/config.toml".into(),
            runtime_dir: "/r".into(),
            socket: "/r/control.sock".into(),
            token_file: "/r/http.token".into(),
            state_file: "/s/state.json".into(),
        },
        url: None,
        config: ConfigInfo {
            path: "/c/config.toml".into(),
            loaded_at: 0,
            error: None,
            warnings: vec![],
        },
        access: access("iam-user"),
        current_profile: None,
        profiles: vec![],
        docker,
    }
}

#[test]
fn setup_before_any_grant_tries_the_engine_socket_itself() {
    let daemon = FakeDaemon::start(|request, _| match request {
        Request::Status => Response::Status(Box::new(status(None))),
        other => panic!("unexpected request {other:?}"),
    });
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let _engine = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let docker = fake_docker(dir.path(), "exit 0");
    let setup = |host: &str| {
        daemon
            .credd(
                &["docker", "setup"],
                &[
                    ("DOCKER_HOST", host),
                    ("CREDD_DOCKER", &docker.display().to_string()),
                ],
            )
            .output()
            .unwrap()
    };
    let out = setup(&format!("unix://{}", socket.display()));
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.starts_with(&format!(
            "engine:   {}: answers (tried from here; the daemon asks it at the first grant)\n\
             docker:   {}\nlistens:  on each Docker network's gateway, port 9912",
            socket.display(),
            docker.display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("nothing needs root"), "{stdout}");
    assert!(
        stdout.contains(
            "\n  sudo iptables -t nat -A PREROUTING -d 169.254.170.2/32 -p tcp --dport 80 -j DNAT \
             --to-destination 172.17.0.1:9912\n"
        ),
        "{stdout}"
    );
    let out = setup(&format!(
        "unix://{}",
        dir.path().join("gone.sock").display()
    ));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("gone.sock: cannot be reached: no socket there"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn setup_after_a_grant_reports_the_daemons_view() {
    let daemon = FakeDaemon::start(|request, _| match request {
        Request::Status => Response::Status(Box::new(status(Some(DockerStatus {
            engine: "unix:///var/run/docker.sock".into(),
            endpoints: vec!["http://172.17.0.1:10000/".into()],
            error: Some("permission denied".into()),
            ..DockerStatus::default()
        })))),
        other => panic!("unexpected request {other:?}"),
    });
    let out = daemon
        .credd(
            &["--json", "docker", "setup"],
            &[("CREDD_DOCKER", "/nonexistent/docker")],
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["engine"], "unix:///var/run/docker.sock");
    assert_eq!(json["engine_error"], "permission denied");
    assert_eq!(json["endpoints"][0], "http://172.17.0.1:10000/");
    assert_eq!(json["docker"], serde_json::Value::Null);
    assert!(
        json["container_route"][0]
            .as_str()
            .unwrap()
            .ends_with("--to-destination 172.17.0.1:10000"),
        "{json}"
    );
}
