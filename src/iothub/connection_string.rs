//! IoT Hub service connection strings (`HostName=…;SharedAccessKeyName=…;SharedAccessKey=…`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::error::ConfigError;
use super::secret::Secret;

/// A parsed hub-level connection string. `Debug` hides the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionString {
    host_name: String,
    key_name: String,
    key: Secret,
}

impl ConnectionString {
    /// Parses a service connection string: parts separated by `;`, each split on its
    /// first `=` (keys end in `=` padding). Device- or module-scoped strings are refused
    /// because their keys cannot read other devices' twins.
    pub fn parse(text: &str) -> Result<ConnectionString, ConfigError> {
        let mut host_name = None;
        let mut key_name = None;
        let mut key = None;
        for part in text
            .trim()
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let Some((name, value)) = part.split_once('=') else {
                return Err(ConfigError::MalformedPart(part_name_only(part)));
            };
            let value = value.trim();
            match name.trim() {
                "HostName" => host_name = Some(value.to_owned()),
                "SharedAccessKeyName" => key_name = Some(value.to_owned()),
                "SharedAccessKey" => key = Some(value.to_owned()),
                "DeviceId" => return Err(ConfigError::DeviceScoped("DeviceId")),
                "ModuleId" => return Err(ConfigError::DeviceScoped("ModuleId")),
                _ => {}
            }
        }
        let host_name = non_empty(host_name, "HostName")?;
        let key_name = non_empty(key_name, "SharedAccessKeyName")?;
        let key = non_empty(key, "SharedAccessKey")?;
        if BASE64.decode(&key).is_err() {
            return Err(ConfigError::KeyNotBase64);
        }
        Ok(ConnectionString {
            host_name,
            key_name,
            key: Secret::new(key),
        })
    }

    /// `<hub>.azure-devices.net`, with `:port` when the string has one.
    pub fn host_name(&self) -> &str {
        &self.host_name
    }

    /// The shared access policy name (`skn`).
    pub fn key_name(&self) -> &str {
        &self.key_name
    }

    /// The base64 policy key.
    pub fn key(&self) -> &Secret {
        &self.key
    }
}

fn non_empty(value: Option<String>, name: &'static str) -> Result<String, ConfigError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or(ConfigError::MissingPart(name))
}

/// A malformed part may be a pasted key; report only a short prefix of it.
fn part_name_only(part: &str) -> String {
    let prefix: String = part.chars().take(12).collect();
    if prefix.len() < part.len() {
        format!("{prefix}…")
    } else {
        prefix
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "c2VjcmV0LWtleS1mb3ItdGVzdHM=";

    #[test]
    fn parses_a_service_connection_string() {
        let cs = ConnectionString::parse(&format!(
            "HostName=plant-a.azure-devices.net;SharedAccessKeyName=service;SharedAccessKey={KEY}"
        ))
        .unwrap();
        assert_eq!(cs.host_name(), "plant-a.azure-devices.net");
        assert_eq!(cs.key_name(), "service");
        assert_eq!(cs.key().expose(), KEY);
    }

    #[test]
    fn tolerates_order_whitespace_and_trailing_semicolon() {
        let cs = ConnectionString::parse(&format!(
            " SharedAccessKey={KEY}; HostName=localhost:8443 ;SharedAccessKeyName=iothubowner;"
        ))
        .unwrap();
        assert_eq!(cs.host_name(), "localhost:8443");
    }

    #[test]
    fn debug_never_shows_the_key() {
        let cs = ConnectionString::parse(&format!(
            "HostName=h;SharedAccessKeyName=service;SharedAccessKey={KEY}"
        ))
        .unwrap();
        assert!(!format!("{cs:?}").contains(KEY));
    }

    #[test]
    fn device_and_module_scoped_strings_are_refused() {
        let device = format!("HostName=h;DeviceId=d1;SharedAccessKey={KEY}");
        assert_eq!(
            ConnectionString::parse(&device),
            Err(ConfigError::DeviceScoped("DeviceId"))
        );
        let module = format!("HostName=h;DeviceId=d1;ModuleId=m;SharedAccessKey={KEY}");
        assert!(matches!(
            ConnectionString::parse(&module),
            Err(ConfigError::DeviceScoped(_))
        ));
    }

    #[test]
    fn missing_parts_are_named() {
        let cases = [
            (
                format!("SharedAccessKeyName=s;SharedAccessKey={KEY}"),
                "HostName",
            ),
            (
                format!("HostName=h;SharedAccessKey={KEY}"),
                "SharedAccessKeyName",
            ),
            (
                "HostName=h;SharedAccessKeyName=s".to_owned(),
                "SharedAccessKey",
            ),
            (
                "HostName=h;SharedAccessKeyName=s;SharedAccessKey=".to_owned(),
                "SharedAccessKey",
            ),
            (String::new(), "HostName"),
        ];
        for (text, part) in cases {
            assert_eq!(
                ConnectionString::parse(&text),
                Err(ConfigError::MissingPart(part)),
                "{text}"
            );
        }
    }

    #[test]
    fn errors_never_echo_the_key() {
        let secretish = "SharedAccessKeyZZZZsupersecretvalue";
        let err = ConnectionString::parse(&format!("HostName=h;{secretish}")).unwrap_err();
        assert!(!err.to_string().contains("supersecretvalue"), "{err}");
        let err =
            ConnectionString::parse("HostName=h;SharedAccessKeyName=s;SharedAccessKey=not*base64")
                .unwrap_err();
        assert_eq!(err, ConfigError::KeyNotBase64);
        assert!(!err.to_string().contains("not*base64"));
    }
}
