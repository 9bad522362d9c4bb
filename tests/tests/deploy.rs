//! The deployment descriptors as code: `mta.yaml` (the MTA that `mbt build` and `cf deploy` take)
//! is valid against the published MTA schema (JSON Schema Store's, vendored unchanged in
//! `deploy/schema/` so the check runs offline), and it describes the app `manifest.yml` pushes
//! (same path, buildpack, command, memory, environment, health check and bindings) with the
//! XSUAA configuration of `xs-security.json`. Each check is also shown to refuse a descriptor
//! broken on purpose, so none of them passes whatever the file says.
//!
//! The schema leaves module and resource parameters open (each is an `anyOf` whose Cloud
//! Foundry branch allows any properties), so what the relay depends on there is checked here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Where JSON Schema Store publishes the two schemas: `mta.json` refers to `mtad.json` by a
/// relative reference resolved against its own `$id`.
const MTA_SCHEMA_URI: &str = "https://json.schemastore.org/mta.json";
const MTAD_SCHEMA_URI: &str = "https://json.schemastore.org/mtad.json";

/// The vendored files' SHA-256, as `deploy/schema/README.md` records them: the schema is used
/// unchanged.
const SCHEMA_HASHES: [(&str, &str); 2] = [
    (
        "mta.json",
        "20c4e2fb5870295136efa2c9d620ce9248114ae367d1741990feb4d497953e83",
    ),
    (
        "mtad.json",
        "ccad37852d07eb0b6f2dfb84fc9956b29b8117ee1f73f8e14111cccd397881df",
    ),
];

/// The services whose bindings the relay reads from `VCAP_SERVICES`, by label.
const SERVICES_THE_RELAY_READS: [&str; 2] = ["redis-cache", "destination"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(relative: &str) -> Result<String> {
    let path = repo().join(relative);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

fn yaml(relative: &str) -> Result<Value> {
    serde_saphyr::from_str(&read(relative)?).with_context(|| format!("{relative} is not YAML"))
}

fn json_file(relative: &str) -> Result<Value> {
    serde_json::from_str(&read(relative)?).with_context(|| format!("{relative} is not JSON"))
}

/// The MTA development descriptor's schema, its references to the deployment descriptor's
/// schema resolved from the vendored copy. Nothing is fetched: a reference to anything else
/// fails to build.
fn mta_schema() -> Result<jsonschema::Validator> {
    let mta = json_file("deploy/schema/mta.json")?;
    let mtad = json_file("deploy/schema/mtad.json")?;
    let registry = jsonschema::Registry::new()
        .add(MTAD_SCHEMA_URI, jsonschema::Resource::from_contents(mtad))
        .map_err(|e| anyhow!("registering mtad.json: {e}"))?
        .prepare()
        .map_err(|e| anyhow!("preparing the schema registry: {e}"))?;
    jsonschema::options()
        .with_base_uri(MTA_SCHEMA_URI)
        .with_registry(&registry)
        .build(&mta)
        .map_err(|e| anyhow!("the MTA schema does not build: {e}"))
}

/// Each place the descriptor breaks the schema, with the path into the descriptor.
fn schema_errors(schema: &jsonschema::Validator, descriptor: &Value) -> Vec<String> {
    schema
        .iter_errors(descriptor)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

fn items<'a>(value: &'a Value, pointer: &str) -> &'a [Value] {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// A memory figure as Cloud Foundry and the MTA deployer write it (`128M`, `1G`), in MiB.
fn mebibytes(memory: &str) -> Option<u64> {
    let digits = memory.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let number: u64 = digits.parse().ok()?;
    match memory[digits.len()..].to_ascii_uppercase().as_str() {
        "M" | "MB" => Some(number),
        "G" | "GB" => Some(number * 1024),
        _ => None,
    }
}

/// `$XSAPPNAME.<name>` scopes the role templates may reference.
fn declared_scopes(xs_security: &Value) -> Vec<&str> {
    items(xs_security, "/scopes")
        .iter()
        .filter_map(|s| text(s, "/name"))
        .collect()
}

/// Where the descriptor disagrees with `manifest.yml`, `xs-security.json` and the relay: each
/// problem named, none when they agree.
fn agreement_problems(mta: &Value, manifest: &Value, xs_security: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let mut problem = |p: String| problems.push(p);

    if text(mta, "/version") != Some(env!("CARGO_PKG_VERSION")) {
        problem(format!(
            "the MTA's version {:?} is not the workspace's {}",
            mta.get("version"),
            env!("CARGO_PKG_VERSION")
        ));
    }

    let apps = items(manifest, "/applications");
    let [app] = apps else {
        problem(format!(
            "manifest.yml should push one app, not {}",
            apps.len()
        ));
        return problems;
    };
    let app_name = text(app, "/name").unwrap_or_default();
    let modules = items(mta, "/modules");
    let Some(module) = modules
        .iter()
        .find(|m| text(m, "/parameters/app-name").or_else(|| text(m, "/name")) == Some(app_name))
    else {
        problem(format!(
            "no module deploys the app {app_name:?} of manifest.yml"
        ));
        return problems;
    };
    let parameters = module.get("parameters").cloned().unwrap_or(json!({}));

    let trimmed =
        |p: Option<&str>| p.map(|p| p.trim_start_matches("./").trim_end_matches('/').to_string());
    if trimmed(text(module, "/path")) != trimmed(text(app, "/path")) {
        problem(format!(
            "the module's path {:?} is not the manifest's {:?}",
            module.get("path"),
            app.get("path")
        ));
    }
    let buildpacks: Vec<&str> = match (parameters.get("buildpack"), parameters.get("buildpacks")) {
        (Some(Value::String(one)), None) => vec![one.as_str()],
        (None, Some(Value::Array(many))) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let manifest_buildpacks: Vec<&str> = items(app, "/buildpacks")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if buildpacks != manifest_buildpacks {
        problem(format!(
            "the module's buildpacks {buildpacks:?} are not the manifest's {manifest_buildpacks:?}"
        ));
    }
    for key in [
        "stack",
        "command",
        "instances",
        "health-check-type",
        "health-check-http-endpoint",
    ] {
        if parameters.get(key) != app.get(key) {
            problem(format!(
                "the module's {key} {:?} is not the manifest's {:?}",
                parameters.get(key),
                app.get(key)
            ));
        }
    }
    let memory = |v: &Value| v.get("memory").and_then(Value::as_str).and_then(mebibytes);
    if memory(&parameters).is_none() || memory(&parameters) != memory(app) {
        problem(format!(
            "the module's memory {:?} is not the manifest's {:?}",
            parameters.get("memory"),
            app.get("memory")
        ));
    }

    // The app's environment: the module's properties are what the deployer sets.
    let env = |v: Option<&Value>| -> BTreeMap<String, Value> {
        v.and_then(Value::as_object)
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    };
    let (module_env, manifest_env) = (env(module.get("properties")), env(app.get("env")));
    if module_env != manifest_env {
        problem(format!(
            "the module's properties {module_env:?} are not the manifest's env {manifest_env:?}"
        ));
    }

    // Bindings: every name the module requires is a resource of the MTA (the schema checks no
    // references), the manifest's services are among them, and so are the services whose
    // bindings the relay reads.
    let resources = items(mta, "/resources");
    let resource = |name: &str| resources.iter().find(|r| text(r, "/name") == Some(name));
    let provided: Vec<&str> = modules
        .iter()
        .flat_map(|m| items(m, "/provides"))
        .filter_map(|p| text(p, "/name"))
        .collect();
    let mut bound = Vec::new();
    for name in items(module, "/requires")
        .iter()
        .filter_map(|r| text(r, "/name"))
    {
        match resource(name) {
            Some(r) if r.get("active") == Some(&json!(false)) => problem(format!(
                "the module requires {name:?}, which is not active: the binding would be missing"
            )),
            Some(r) => bound.push(r),
            None if provided.contains(&name) => {}
            None => problem(format!(
                "the module requires {name:?}, which the MTA does not have"
            )),
        }
    }
    for service in items(app, "/services").iter().filter_map(Value::as_str) {
        let instance = |r: &&Value| {
            text(r, "/parameters/service-name").or_else(|| text(r, "/name")) == Some(service)
        };
        if !bound.iter().any(instance) {
            problem(format!(
                "the manifest binds {service:?}, the module binds no resource of that instance name"
            ));
        }
    }
    for label in SERVICES_THE_RELAY_READS {
        if !bound
            .iter()
            .any(|r| text(r, "/parameters/service") == Some(label))
        {
            problem(format!(
                "the module binds no {label} service, which the relay reads"
            ));
        }
    }

    // XSUAA: the instance is made from xs-security.json, whose application name it keeps, and
    // the role a rep needs carries the scope the relay demands (`<xsappname>.Agent` by default).
    let xsappname = text(xs_security, "/xsappname");
    let xsuaa: Vec<&Value> = resources
        .iter()
        .filter(|r| text(r, "/parameters/service") == Some("xsuaa"))
        .collect();
    match xsuaa.as_slice() {
        [xsuaa] => {
            let path = trimmed(text(xsuaa, "/parameters/path"));
            if path.as_deref() != Some("xs-security.json") {
                problem(format!(
                    "the XSUAA instance is not made from xs-security.json but {path:?}"
                ));
            }
            if text(xsuaa, "/parameters/service-plan") != Some("application") {
                problem("the XSUAA instance's plan is not `application`".into());
            }
            if let Some(name) = xsuaa.pointer("/parameters/config/xsappname")
                && name.as_str() != xsappname
            {
                problem(format!(
                    "the XSUAA instance's xsappname {name} is not xs-security.json's {xsappname:?}"
                ));
            }
            if !bound.iter().any(|r| std::ptr::eq(*r, *xsuaa)) {
                problem("the module does not bind the XSUAA instance".into());
            }
        }
        other => problem(format!(
            "the MTA should have one XSUAA instance, not {}",
            other.len()
        )),
    }
    let scopes = declared_scopes(xs_security);
    if !scopes.contains(&"$XSAPPNAME.Agent") {
        problem(format!(
            "xs-security.json declares no `$XSAPPNAME.Agent` scope, the one the relay demands: {scopes:?}"
        ));
    }
    for template in items(xs_security, "/role-templates") {
        for reference in items(template, "/scope-references")
            .iter()
            .filter_map(Value::as_str)
        {
            if !scopes.contains(&reference) {
                problem(format!(
                    "role template {:?} references {reference:?}, which xs-security.json does not declare",
                    template.get("name")
                ));
            }
        }
    }

    // The SaaS registry: its callbacks are the paths the relay serves, and XSUAA lets it call
    // them: a shared tenant mode and the `Callback` scope granted to the registry as an
    // authority (the scope the relay asks of the registry's token by default).
    for saas in resources
        .iter()
        .filter(|r| text(r, "/parameters/service") == Some("saas-registry"))
    {
        if text(saas, "/parameters/config/xsappname") != xsappname {
            problem("the saas-registry resource names another xsappname".into());
        }
        if saas.get("active") == Some(&json!(false)) {
            continue;
        }
        for (key, path) in [
            ("getDependencies", "/callback/v1.0/dependencies"),
            ("onSubscription", "/callback/v1.0/tenants/{tenantId}"),
        ] {
            let url = text(saas, &format!("/parameters/config/appUrls/{key}"));
            if !url.is_some_and(|u| u.starts_with("~{cti-relay-api/url}") && u.ends_with(path)) {
                problem(format!(
                    "the SaaS registry's {key} {url:?} is not the relay's {path} on the app's URL"
                ));
            }
        }
        if text(xs_security, "/tenant-mode") != Some("shared") {
            problem(
                "the SaaS registry is active, but xs-security.json's tenant mode is not `shared`"
                    .into(),
            );
        }
        let granted = items(xs_security, "/scopes").iter().any(|scope| {
            text(scope, "/name") == Some("$XSAPPNAME.Callback")
                && items(scope, "/grant-as-authority-to-apps")
                    .iter()
                    .any(|app| {
                        app.as_str()
                            == Some("$XSAPPNAME(application,sap-provisioning,tenant-onboarding)")
                    })
        });
        if !granted {
            problem(
                "xs-security.json does not grant `$XSAPPNAME.Callback` to the SaaS registry \
                 (`$XSAPPNAME(application,sap-provisioning,tenant-onboarding)`)"
                    .into(),
            );
        }
    }
    problems
}

/// `VCAP_SERVICES` as Cloud Foundry would set it for the module's bindings (credentials made
/// up, in each service's shape), so the relay's reading of it can be checked.
fn vcap_services(mta: &Value) -> Value {
    let resources = items(mta, "/resources");
    let mut vcap = serde_json::Map::new();
    for name in items(mta, "/modules/0/requires")
        .iter()
        .filter_map(|r| text(r, "/name"))
    {
        let Some(resource) = resources.iter().find(|r| text(r, "/name") == Some(name)) else {
            continue;
        };
        let label = text(resource, "/parameters/service").unwrap_or_default();
        let credentials = match label {
            "redis-cache" => {
                json!({"hostname": "redis.example", "port": 1234, "password": "pw", "tls": true})
            }
            "destination" => json!({
                "uri": "https://destination.example", "url": "https://uaa.example",
                "clientid": "client", "clientsecret": "secret"
            }),
            _ => json!({"url": "https://uaa.example", "xsappname": "cti-relay!t1"}),
        };
        let instance = text(resource, "/parameters/service-name").unwrap_or(name);
        let binding = json!({"label": label, "name": instance, "credentials": credentials});
        if let Some(bindings) = vcap
            .entry(label.to_string())
            .or_insert_with(|| json!([]))
            .as_array_mut()
        {
            bindings.push(binding);
        }
    }
    Value::Object(vcap)
}

struct Descriptors {
    mta: Value,
    manifest: Value,
    xs_security: Value,
}

fn descriptors() -> Result<Descriptors> {
    Ok(Descriptors {
        mta: yaml("mta.yaml")?,
        manifest: yaml("manifest.yml")?,
        xs_security: json_file("xs-security.json")?,
    })
}

#[test]
fn the_vendored_mta_schema_is_the_published_one_unchanged() -> Result<()> {
    for (file, expected) in SCHEMA_HASHES {
        let bytes = std::fs::read(repo().join("deploy/schema").join(file))?;
        let actual = hex::encode(Sha256::digest(&bytes));
        assert_eq!(
            actual, expected,
            "deploy/schema/{file} differs from the copy deploy/schema/README.md names"
        );
    }
    Ok(())
}

#[test]
fn mta_yaml_is_valid_against_the_mta_schema() -> Result<()> {
    let schema = mta_schema()?;
    let errors = schema_errors(&schema, &descriptors()?.mta);
    assert!(
        errors.is_empty(),
        "mta.yaml breaks the MTA schema: {errors:#?}"
    );
    Ok(())
}

/// A change to a descriptor, to show a check refuses it.
type Breakage = Box<dyn Fn(&mut Value)>;

fn breakage(f: impl Fn(&mut Value) + 'static) -> Breakage {
    Box::new(f)
}

fn remove(value: &mut Value, key: &str) {
    if let Some(object) = value.as_object_mut() {
        object.remove(key);
    }
}

#[test]
fn the_schema_refuses_a_broken_descriptor() -> Result<()> {
    let schema = mta_schema()?;
    let good = descriptors()?.mta;
    let breakages: Vec<(&str, Breakage)> = vec![
        ("no ID", breakage(|d| remove(d, "ID"))),
        (
            "an ID with a space",
            breakage(|d| d["ID"] = json!("open cti")),
        ),
        (
            "a version that is not semantic",
            breakage(|d| d["version"] = json!("1.0")),
        ),
        (
            "a module without a type",
            breakage(|d| remove(&mut d["modules"][0], "type")),
        ),
        (
            "modules written as a map",
            breakage(|d| d["modules"] = json!({"cti-relay": {"type": "binary"}})),
        ),
        (
            "a resource name with a slash",
            breakage(|d| d["resources"][0]["name"] = json!("cti/xsuaa")),
        ),
        (
            "a required name that is a number",
            breakage(|d| d["modules"][0]["requires"][0]["name"] = json!(42)),
        ),
        (
            "active written as text",
            breakage(|d| d["resources"][0]["active"] = json!("no")),
        ),
    ];
    for (what, breakage) in breakages {
        let mut broken = good.clone();
        breakage(&mut broken);
        if broken == good {
            bail!("{what}: the breakage changed nothing");
        }
        assert!(
            !schema_errors(&schema, &broken).is_empty(),
            "the schema took a descriptor with {what}"
        );
    }
    Ok(())
}

#[test]
fn mta_yaml_agrees_with_the_manifest_and_xs_security() -> Result<()> {
    let d = descriptors()?;
    let problems = agreement_problems(&d.mta, &d.manifest, &d.xs_security);
    assert!(problems.is_empty(), "{problems:#?}");
    Ok(())
}

/// A change to one of the three descriptors (`mta.yaml`, `manifest.yml`, `xs-security.json`).
type Disagreement = Box<dyn Fn(&mut Value, &mut Value, &mut Value)>;

fn disagreement(f: impl Fn(&mut Value, &mut Value, &mut Value) + 'static) -> Disagreement {
    Box::new(f)
}

fn first_module(mta: &mut Value) -> &mut Value {
    &mut mta["modules"][0]
}

/// The MTA's resource of a service (`xsuaa`, `saas-registry`, ...).
fn resource_of<'a>(mta: &'a mut Value, service: &str) -> Option<&'a mut Value> {
    mta["resources"]
        .as_array_mut()?
        .iter_mut()
        .find(|r| text(r, "/parameters/service") == Some(service))
}

#[test]
fn a_descriptor_that_disagrees_is_refused() -> Result<()> {
    let d = descriptors()?;
    let breakages: Vec<(&str, Disagreement)> = vec![
        (
            "another command",
            disagreement(|m, _, _| first_module(m)["parameters"]["command"] = json!("./relay")),
        ),
        (
            "another memory",
            disagreement(|m, _, _| first_module(m)["parameters"]["memory"] = json!("256M")),
        ),
        (
            "memory written with a space",
            disagreement(|m, _, _| first_module(m)["parameters"]["memory"] = json!("128 M")),
        ),
        (
            "another buildpack",
            disagreement(|m, _, _| {
                first_module(m)["parameters"]["buildpack"] = json!("nodejs_buildpack")
            }),
        ),
        (
            "another path",
            disagreement(|m, _, _| first_module(m)["path"] = json!("target")),
        ),
        (
            "another stack",
            disagreement(|m, _, _| first_module(m)["parameters"]["stack"] = json!("cflinuxfs3")),
        ),
        (
            "a missing environment variable",
            disagreement(|m, _, _| remove(&mut first_module(m)["properties"], "CTI_WIDGET_DIR")),
        ),
        (
            "an environment variable the manifest lacks",
            disagreement(|m, _, _| first_module(m)["properties"]["CTI_EXTRA"] = json!("1")),
        ),
        (
            "another health check",
            disagreement(|m, _, _| {
                first_module(m)["parameters"]["health-check-type"] = json!("port")
            }),
        ),
        (
            "no Redis binding",
            disagreement(|m, _, _| {
                if let Some(requires) = first_module(m)["requires"].as_array_mut() {
                    requires.retain(|r| r["name"] != json!("cti-redis"));
                }
            }),
        ),
        (
            "a binding to a resource that is not there",
            disagreement(|m, _, _| first_module(m)["requires"][0]["name"] = json!("cti-uaa")),
        ),
        (
            "the manifest binding a service the MTA does not",
            disagreement(|_, f, _| {
                f["applications"][0]["services"] = json!(["cti-xsuaa", "cti-audit"])
            }),
        ),
        (
            "another xsappname",
            disagreement(|_, _, x| x["xsappname"] = json!("other-app")),
        ),
        (
            "XSUAA from another file",
            disagreement(|m, _, _| {
                if let Some(xsuaa) = resource_of(m, "xsuaa") {
                    xsuaa["parameters"]["path"] = json!("./security.json");
                }
            }),
        ),
        (
            "no Agent scope",
            disagreement(|_, _, x| {
                if let Some(scopes) = x["scopes"].as_array_mut() {
                    scopes.retain(|s| s["name"] != json!("$XSAPPNAME.Agent"));
                }
            }),
        ),
        (
            "a dedicated tenant mode with the SaaS registry",
            disagreement(|_, _, x| x["tenant-mode"] = json!("dedicated")),
        ),
        (
            "no Callback scope for the SaaS registry",
            disagreement(|_, _, x| {
                if let Some(scopes) = x["scopes"].as_array_mut() {
                    scopes.retain(|s| s["name"] != json!("$XSAPPNAME.Callback"));
                }
            }),
        ),
        (
            "the Callback scope not granted to the SaaS registry",
            disagreement(|_, _, x| {
                if let Some(scopes) = x["scopes"].as_array_mut() {
                    for scope in scopes {
                        if let Some(o) = scope.as_object_mut() {
                            o.remove("grant-as-authority-to-apps");
                        }
                    }
                }
            }),
        ),
        (
            "a subscription callback the relay does not serve",
            disagreement(|m, _, _| {
                if let Some(saas) = resource_of(m, "saas-registry") {
                    saas["parameters"]["config"]["appUrls"]["onSubscription"] =
                        json!("~{cti-relay-api/url}/saas/{tenantId}");
                }
            }),
        ),
        (
            "another version",
            disagreement(|m, _, _| m["version"] = json!("9.9.9")),
        ),
    ];
    for (what, breakage) in breakages {
        let (mut mta, mut manifest, mut xs) =
            (d.mta.clone(), d.manifest.clone(), d.xs_security.clone());
        breakage(&mut mta, &mut manifest, &mut xs);
        if (&mta, &manifest, &xs) == (&d.mta, &d.manifest, &d.xs_security) {
            bail!("{what}: the breakage changed nothing");
        }
        assert!(
            !agreement_problems(&mta, &manifest, &xs).is_empty(),
            "a descriptor with {what} was taken"
        );
    }
    Ok(())
}

#[test]
fn the_relay_reads_the_bindings_the_descriptor_makes() -> Result<()> {
    let vcap = vcap_services(&descriptors()?.mta).to_string();
    let config = cti_relay::Config::from_vars(|name| match name {
        "VCAP_SERVICES" => Some(vcap.clone()),
        "PORT" => Some("8080".into()),
        _ => None,
    })
    .map_err(|e| anyhow!("the relay refuses the bindings: {e}"))?;
    assert_eq!(
        config.redis_url.as_ref().map(|s| s.expose()),
        Some("rediss://:pw@redis.example:1234"),
        "the relay takes Redis from the redis-cache binding"
    );
    let destination = config
        .destination
        .context("the relay takes the Destination service from its binding")?;
    assert_eq!(destination.uri, "https://destination.example");
    Ok(())
}
