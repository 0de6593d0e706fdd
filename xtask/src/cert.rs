//! `cargo xtask cert`: make an application CA key and issue identity certificates with it.
//!
//! The files hold the one-line text forms of `lanewire_core::crypto` (`lanewire-ca-key:<hex>`,
//! `lanewire-ca-pub:<hex>`, `lanewire-identity-key:<hex>`, `lanewire-cert:<hex>`), each followed
//! by a newline. Secret keys are written with mode 0600 and never printed. Keys come from the
//! core's ChaCha20 RNG seeded with 32 bytes of `/dev/urandom`.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use lanewire_core::Rng;
use lanewire_core::crypto::{CaKey, CaPublicKey, Certificate, IdentityKey, TrustStore};
use lanewire_core::identity::Identity;

/// Help for `cargo xtask cert`.
pub(crate) const HELP: &str = "\
cargo xtask cert: make a CA key and issue certificates

USAGE:
  cargo xtask cert ca --out DIR [--force]
      writes DIR/ca.key (secret, mode 0600) and DIR/ca.pub
  cargo xtask cert issue --ca DIR/ca.key --identity ID [--days N] --out DIR [--name NAME] [--force]
      makes an identity key and a certificate for ID (e.g. str:server, ip:10.0.0.1,
      gen:0a0b) valid from an hour ago for N days (default 30); writes DIR/NAME.key (secret,
      mode 0600) and DIR/NAME.cert, NAME defaulting to ID without its kind (`server`)
  cargo xtask cert verify --ca-pub DIR/ca.pub --cert FILE [--identity ID]
      checks a certificate against a CA public key at the current time

Existing files are not overwritten without --force. Give ca.pub to every peer
(TrustStore::add_ca) and NAME.key with NAME.cert to the peer they certify
(Credentials::certified); keep ca.key offline.";

/// Seconds of clock skew a fresh certificate allows for (`not_before` is this far back).
const SKEW_SECS: u64 = 3600;
const DAY: u64 = 86_400;

/// `cargo xtask cert`.
pub(crate) fn main(args: &[String]) -> Result<(), String> {
    let (sub, rest) = args.split_first().ok_or_else(|| format!("missing subcommand\n\n{HELP}"))?;
    let opts = Options::parse(rest)?;
    let (written, hint) = match sub.as_str() {
        "ca" => make_ca(&opts, &mut os_rng()?)?,
        "issue" => issue(&opts, &mut os_rng()?, unix_now()?)?,
        "verify" => return verify(&opts, unix_now()?),
        other => return Err(format!("unknown subcommand `{other}`\n\n{HELP}")),
    };
    for (path, what) in &written {
        println!("wrote {}  ({what})", path.display());
    }
    println!("{hint}");
    Ok(())
}

/// Files written, each with what it is, and a one-line hint of what to do next.
type Written = (Vec<(PathBuf, String)>, String);

/// The options every subcommand draws from.
#[derive(Debug, Default)]
struct Options {
    out: Option<PathBuf>,
    ca: Option<PathBuf>,
    ca_pub: Option<PathBuf>,
    cert: Option<PathBuf>,
    identity: Option<String>,
    name: Option<String>,
    days: Option<u64>,
    force: bool,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options::default();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            if flag == "--force" {
                o.force = true;
                continue;
            }
            let value = it.next().ok_or_else(|| format!("{flag} needs a value\n\n{HELP}"))?;
            match flag.as_str() {
                "--out" => o.out = Some(value.into()),
                "--ca" => o.ca = Some(value.into()),
                "--ca-pub" => o.ca_pub = Some(value.into()),
                "--cert" => o.cert = Some(value.into()),
                "--identity" => o.identity = Some(value.clone()),
                "--name" => o.name = Some(value.clone()),
                "--days" => {
                    let days = value.parse().ok().filter(|&d: &u64| d > 0 && d <= 100 * 365);
                    o.days = Some(days.ok_or("--days takes a number of days from 1 to 36500")?);
                }
                _ => return Err(format!("unknown option `{flag}`\n\n{HELP}")),
            }
        }
        Ok(o)
    }
}

fn required<'a, T>(v: &'a Option<T>, flag: &str) -> Result<&'a T, String> {
    v.as_ref().ok_or_else(|| format!("{flag} is required\n\n{HELP}"))
}

/// The core's RNG keyed by 32 bytes of operating-system entropy.
fn os_rng() -> Result<Rng, String> {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(|e| format!("reading 32 bytes of /dev/urandom: {e}"))?;
    let rng = Rng::from_seed(seed);
    seed.fill(0);
    Ok(rng)
}

fn unix_now() -> Result<u64, String> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| "the system clock is before 1970".to_owned())
}

/// Writes `text` and a newline to `path`: mode 0600 when `secret`, and only over an existing
/// file when `force`.
fn write_file(path: &Path, text: &str, secret: bool, force: bool) -> Result<(), String> {
    let mut opts = OpenOptions::new();
    opts.write(true);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            format!("{} exists; remove it or pass --force", path.display())
        }
        _ => format!("writing {}: {e}", path.display()),
    })?;
    // A file that existed before keeps its mode: tighten it for secrets.
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("chmod 600 {}: {e}", path.display()))?;
    }
    f.write_all(text.as_bytes())
        .and_then(|()| f.write_all(b"\n"))
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Fails before anything is written if one of a set of outputs exists (without `force`), so
/// a refused run never leaves a key without its certificate.
fn refuse_existing(paths: &[&Path], force: bool) -> Result<(), String> {
    match paths.iter().find(|p| !force && p.exists()) {
        Some(p) => Err(format!("{} exists; remove it or pass --force", p.display())),
        None => Ok(()),
    }
}

fn read_text(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

fn out_dir(opts: &Options) -> Result<&PathBuf, String> {
    let dir = required(&opts.out, "--out")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    Ok(dir)
}

/// `cert ca`: a new CA key.
fn make_ca(opts: &Options, rng: &mut Rng) -> Result<Written, String> {
    let dir = out_dir(opts)?;
    let ca = CaKey::generate(rng);
    let (key, public) = (dir.join("ca.key"), dir.join("ca.pub"));
    refuse_existing(&[&key, &public], opts.force)?;
    write_file(&key, &ca.to_text(), true, opts.force)?;
    write_file(&public, &ca.public().to_string(), false, opts.force)?;
    let hint = format!(
        "next: cargo xtask cert issue --ca {} --identity str:server --days 30 --out {}",
        key.display(),
        dir.display()
    );
    let files = vec![
        (key, format!("CA secret key {}, mode 0600: keep it offline", ca.key_id())),
        (public, "CA public key: give it to every peer".to_owned()),
    ];
    Ok((files, hint))
}

/// The file name for an identity: its text form without the kind, with anything but
/// `[A-Za-z0-9._-]` replaced by `_`.
fn default_name(id: &Identity) -> String {
    let text = id.to_string();
    let bare = text.split_once(':').map_or(text.as_str(), |(_, rest)| rest);
    let name: String = bare
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' })
        .collect();
    if name.is_empty() || name.starts_with('.') { format!("id{name}") } else { name }
}

/// `cert issue`: a new identity key and its certificate.
fn issue(opts: &Options, rng: &mut Rng, now: u64) -> Result<Written, String> {
    let ca_path = required(&opts.ca, "--ca")?;
    let ca = CaKey::from_str(&read_text(ca_path)?)
        .map_err(|e| format!("{}: not a CA key ({e})", ca_path.display()))?;
    let id_text = required(&opts.identity, "--identity")?;
    let identity = Identity::from_str(id_text)
        .ok()
        .filter(Identity::is_valid)
        .ok_or_else(|| format!("`{id_text}` is not a valid identity (try str:NAME)"))?;
    let days = opts.days.unwrap_or(30);
    let dir = out_dir(opts)?;
    let name = opts.name.clone().unwrap_or_else(|| default_name(&identity));
    let key = IdentityKey::generate(rng);
    let (not_before, not_after) = (now.saturating_sub(SKEW_SECS), now + days * DAY);
    let cert = ca
        .issue(&identity, &key.public(), not_before, not_after)
        .map_err(|e| format!("issuing: {e}"))?;
    let (key_path, cert_path) = (dir.join(format!("{name}.key")), dir.join(format!("{name}.cert")));
    refuse_existing(&[&key_path, &cert_path], opts.force)?;
    write_file(&key_path, &key.to_text(), true, opts.force)?;
    write_file(&cert_path, &cert.to_string(), false, opts.force)?;
    let hint = format!(
        "use: Credentials::certified(IdentityKey::from_str(<{name}.key>)?, \
         Certificate::from_str(<{name}.cert>)?) on {identity}; its peers trust ca.pub"
    );
    let files = vec![
        (key_path, format!("identity secret key of {identity}, mode 0600")),
        (
            cert_path,
            format!(
                "certificate of {identity} by CA {}, valid unix {not_before}..={not_after}, \
                 {days} days",
                ca.key_id()
            ),
        ),
    ];
    Ok((files, hint))
}

/// `cert verify`: checks a certificate against a CA public key now.
fn verify(opts: &Options, now: u64) -> Result<(), String> {
    let ca_path = required(&opts.ca_pub, "--ca-pub")?;
    let ca = CaPublicKey::from_str(&read_text(ca_path)?)
        .map_err(|e| format!("{}: not a CA public key ({e})", ca_path.display()))?;
    let cert_path = required(&opts.cert, "--cert")?;
    let cert = Certificate::from_str(&read_text(cert_path)?)
        .map_err(|e| format!("{}: {e}", cert_path.display()))?;
    let expected = match &opts.identity {
        Some(t) => Some(Identity::from_str(t).map_err(|e| format!("`{t}`: {e}"))?),
        None => None,
    };
    let mut trust = TrustStore::new();
    trust.add_ca(ca);
    cert.verify(&trust, now, expected.as_ref())
        .map_err(|e| format!("{}: {e}", cert_path.display()))?;
    println!(
        "{}: valid certificate for {} (unix {}..={}), signed by CA {}",
        cert_path.display(),
        cert.identity(),
        cert.not_before(),
        cert.not_after(),
        cert.ca_key_id()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
            let p = std::env::temp_dir()
                .join(format!("lanewire-xtask-{tag}-{}-{nanos}", std::process::id()));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn issued_certificate_verifies_against_the_ca() {
        let tmp = TempDir::new("cert");
        let dir = tmp.0.to_str().unwrap();
        main(&args(&["ca", "--out", dir])).unwrap();
        let ca_key = format!("{dir}/ca.key");
        main(&args(&[
            "issue",
            "--ca",
            &ca_key,
            "--identity",
            "str:server",
            "--days",
            "30",
            "--out",
            dir,
        ]))
        .unwrap();

        let ca_pub = CaPublicKey::from_str(&read_text(&tmp.0.join("ca.pub")).unwrap()).unwrap();
        let ca = CaKey::from_str(&read_text(&tmp.0.join("ca.key")).unwrap()).unwrap();
        assert_eq!(ca.public(), ca_pub);
        let cert = Certificate::from_str(&read_text(&tmp.0.join("server.cert")).unwrap()).unwrap();
        let key = IdentityKey::from_str(&read_text(&tmp.0.join("server.key")).unwrap()).unwrap();
        assert_eq!(cert.public_key(), &key.public(), "the certificate is for the written key");

        let mut trust = TrustStore::new();
        trust.add_ca(ca_pub);
        let now = unix_now().unwrap();
        let server = Identity::string("server").unwrap();
        assert_eq!(cert.verify(&trust, now, Some(&server)), Ok(()));
        assert!(cert.not_after() - now <= 30 * DAY && cert.not_after() - now > 29 * DAY);
        assert!(cert.verify(&trust, now + 31 * DAY, None).is_err(), "expires after 30 days");
        assert!(cert.verify(&TrustStore::new(), now, None).is_err(), "only the CA vouches");
        main(&args(&[
            "verify",
            "--ca-pub",
            &format!("{dir}/ca.pub"),
            "--cert",
            &format!("{dir}/server.cert"),
            "--identity",
            "str:server",
        ]))
        .unwrap();
        assert!(
            main(&args(&[
                "verify",
                "--ca-pub",
                &format!("{dir}/ca.pub"),
                "--cert",
                &format!("{dir}/server.cert"),
                "--identity",
                "str:other"
            ]))
            .is_err()
        );

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for f in ["ca.key", "server.key"] {
                let mode = std::fs::metadata(tmp.0.join(f)).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{f}");
            }
        }
        // No silent overwrite of a key.
        let again = main(&args(&["ca", "--out", dir])).unwrap_err();
        assert!(again.contains("exists"), "{again}");
        main(&args(&["ca", "--out", dir, "--force"])).unwrap();
        assert_ne!(
            CaKey::from_str(&read_text(&tmp.0.join("ca.key")).unwrap()).unwrap().public(),
            ca_pub
        );
    }

    #[test]
    fn refuses_bad_requests() {
        let tmp = TempDir::new("bad");
        let dir = tmp.0.to_str().unwrap();
        main(&args(&["ca", "--out", dir])).unwrap();
        let ca_key = format!("{dir}/ca.key");
        for bad in [
            vec!["issue", "--ca", &ca_key, "--identity", "invalid", "--out", dir],
            vec!["issue", "--ca", &ca_key, "--identity", "nonsense", "--out", dir],
            vec!["issue", "--ca", &ca_key, "--identity", "str:x", "--days", "0", "--out", dir],
            vec!["issue", "--ca", &format!("{dir}/ca.pub"), "--identity", "str:x", "--out", dir],
            vec!["issue", "--identity", "str:x", "--out", dir],
            vec!["frobnicate"],
        ] {
            assert!(main(&args(&bad)).is_err(), "{bad:?}");
        }
        assert_eq!(
            default_name(&Identity::from_str("ip:10.0.0.1:27015").unwrap()),
            "10.0.0.1_27015"
        );
        assert_eq!(default_name(&Identity::string("a/b").unwrap()), "a_b");
    }
}
