{{/* Names and labels. */}}
{{- define "openmeet-appservice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "openmeet-appservice.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "openmeet-appservice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "openmeet-appservice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: daemon
{{- end }}

{{/* Labels without a component, for the test pod (which no selector may match). */}}
{{- define "openmeet-appservice.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "openmeet-appservice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "openmeet-appservice.labels" -}}
{{ include "openmeet-appservice.commonLabels" . }}
app.kubernetes.io/component: daemon
{{- end }}

{{- define "openmeet-appservice.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* SQLite when no PostgreSQL URL is given (inline or from a Secret). */}}
{{- define "openmeet-appservice.sqlite" -}}
{{- if and (not .Values.database.url) (not .Values.database.existingSecret) }}true{{ end }}
{{- end }}

{{- define "openmeet-appservice.replicas" -}}
{{- if include "openmeet-appservice.sqlite" . }}1{{ else }}{{ .Values.replicaCount }}{{ end }}
{{- end }}

{{/* Where the projected secrets volume is mounted; the config's *_file keys point into it. */}}
{{- define "openmeet-appservice.secretsDir" -}}/run/secrets/openmeet-appservice{{- end }}
{{- define "openmeet-appservice.configPath" -}}/etc/openmeet-appservice/config.yaml{{- end }}

{{/* The Secret key of a tenant's token: Secret keys allow no '=', tenant ids allow no '-'. */}}
{{- define "openmeet-appservice.tenantKey" -}}
{{- printf "tenant.%s" (replace "=" "-" .) }}
{{- end }}

{{/* Where a tenant's webhook secret is projected (its file name in the secrets directory). */}}
{{- define "openmeet-appservice.webhookKey" -}}
{{- printf "webhook.%s" (replace "=" "-" .) }}
{{- end }}

{{/* The port of an http(s) URL: the one it names, or 443 / 80 by its scheme. */}}
{{- define "openmeet-appservice.urlPort" -}}
{{- $url := urlParse . }}
{{- $port := regexFind ":[0-9]+$" $url.host | trimPrefix ":" }}
{{- if $port }}{{ $port }}{{ else if eq $url.scheme "https" }}443{{ else }}80{{ end }}
{{- end }}

{{/* registration.url, or the Service inside the cluster; normalised as the daemon's URL parser
     does (default port dropped, no trailing slash), so the registration matches `registration`. */}}
{{- define "openmeet-appservice.registrationUrl" -}}
{{- $url := .Values.registration.url | default (printf "http://%s.%s.svc:%d" (include "openmeet-appservice.fullname" .) .Release.Namespace (int .Values.service.ports.appservice)) }}
{{- $url = regexReplaceAll "^(http://[^/:]+):80(/|$)" $url "${1}${2}" }}
{{- $url = regexReplaceAll "^(https://[^/:]+):443(/|$)" $url "${1}${2}" }}
{{- trimSuffix "/" $url }}
{{- end }}

{{/*
The chart-managed secrets, computed once per render and cached, so that the token Secret, the
registration Secret and the checksum annotation agree: a value given in values.yaml wins, then what
the release's Secret already holds (kept across upgrades), then a fresh 64-hex-character token.
Returns nothing; read `.Values._openmeetSecrets` afterwards (keys: as_token, hs_token (a list),
admin_token, tenants (key → token), database_url, existing (tokens.existingSecret's data, when the
cluster could be asked)).
*/}}
{{- define "openmeet-appservice.computeSecrets" -}}
{{- if not (hasKey .Values "_openmeetSecrets") }}
{{- $name := printf "%s-tokens" (include "openmeet-appservice.fullname" .) }}
{{- $stored := (lookup "v1" "Secret" .Release.Namespace $name).data | default dict }}
{{- $s := dict "tenants" dict }}
{{- if .Values.tokens.existingSecret }}
{{- $existing := (lookup "v1" "Secret" .Release.Namespace .Values.tokens.existingSecret).data | default dict }}
{{- if and (hasKey $existing "as_token") (hasKey $existing "hs_token") }}
{{- $_ := set $s "as_token" (b64dec $existing.as_token | trim) }}
{{- $_ := set $s "hs_token" (include "openmeet-appservice.tokenLines" (b64dec $existing.hs_token) | fromJsonArray) }}
{{- if hasKey $existing "admin_token" }}{{ $_ := set $s "admin_token" (b64dec $existing.admin_token | trim) }}{{ end }}
{{- end }}
{{- else }}
{{- $_ := set $s "as_token" (.Values.tokens.asToken | default (include "openmeet-appservice.storedOrNew" (list $stored "as_token"))) }}
{{- $hs := .Values.tokens.hsToken }}
{{- if kindIs "slice" $hs }}
{{- $_ := set $s "hs_token" $hs }}
{{- else if $hs }}
{{- $_ := set $s "hs_token" (list $hs) }}
{{- else if hasKey $stored "hs_token" }}
{{- $_ := set $s "hs_token" (include "openmeet-appservice.tokenLines" (b64dec $stored.hs_token) | fromJsonArray) }}
{{- else }}
{{- $_ := set $s "hs_token" (list (include "openmeet-appservice.storedOrNew" (list $stored "hs_token"))) }}
{{- end }}
{{- if .Values.tokens.adminToken }}
{{- $_ := set $s "admin_token" (include "openmeet-appservice.storedOrNew" (list $stored "admin_token")) }}
{{- end }}
{{- end }}
{{- range .Values.tenants }}
{{- if not .existingSecret }}
{{- $key := include "openmeet-appservice.tenantKey" .id }}
{{- $_ := set $s.tenants $key (.token | default (include "openmeet-appservice.storedOrNew" (list $stored $key))) }}
{{- end }}
{{- end }}
{{- if .Values.database.url }}
{{- $_ := set $s "database_url" .Values.database.url }}
{{- end }}
{{- $_ := set .Values "_openmeetSecrets" $s }}
{{- end }}
{{- end }}

{{/* (list $stored $key): the stored value of $key, or a fresh token. */}}
{{- define "openmeet-appservice.storedOrNew" -}}
{{- $stored := index . 0 }}{{ $key := index . 1 }}
{{- if hasKey $stored $key }}{{ b64dec (index $stored $key) | trim }}{{ else }}{{ sha256sum (randAlphaNum 64) }}{{ end }}
{{- end }}

{{/* The non-empty, non-comment lines of a token file, as a JSON array (as the daemon reads them). */}}
{{- define "openmeet-appservice.tokenLines" -}}
{{- $lines := list }}
{{- range splitList "\n" . }}
{{- $line := trim . }}
{{- if and $line (not (hasPrefix "#" $line)) }}{{ $lines = append $lines $line }}{{ end }}
{{- end }}
{{- toJson $lines }}
{{- end }}

{{/*
A string as the daemon's YAML serializer (yaml_serde, over libyaml) writes it in a block mapping:
single-quoted when it would read back as null, a boolean or a number (or is digits with a leading
zero), or when libyaml cannot write it plain (a leading indicator character, ": ", " #", a trailing
':'); plain otherwise. The schema keeps tokens to printable ASCII without spaces, where this is
exact except for numbers at the very edge of f64's range and hexadecimal integers beyond 128
bits.
*/}}
{{- define "openmeet-appservice.yamlString" -}}
{{- $s := . }}
{{- $quote := false }}
{{- if regexMatch "^(~|null|Null|NULL|true|True|TRUE|false|False|FALSE)?$" $s }}{{ $quote = true }}{{ end }}
{{- if regexMatch "^[-+]?[0-9]+$" $s }}{{ $quote = true }}{{ end }}
{{- if regexMatch "^\\+?0(x[0-9a-fA-F]+|o[0-7]+|b[01]+)$|^-0(x[0-9a-fA-F]+|o[0-7]+|b[01]+)$" $s }}{{ $quote = true }}{{ end }}
{{- $float := regexFind "^[-+]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][-+]?[0-9]+)?$" $s }}
{{- if $float }}
{{- /* Finite unless the exponent pushes it past f64's range (about 1.8e308). */}}
{{- $digits := regexReplaceAll "^[-+]?0*([0-9]*).*$" $float "${1}" }}
{{- $exponent := regexReplaceAll "^[^eE]*([eE]\\+?0*([0-9]*))?$" $float "${2}" }}
{{- if or (regexMatch "[eE]-" $float) (not $exponent) (and (le (len $exponent) 4) (le (add (len $digits) (atoi $exponent)) 309)) }}{{ $quote = true }}{{ end }}
{{- end }}
{{- if regexMatch "^([-?:]( |$)|[#,\\[\\]{}&*!|>'\"%@`]|---|\\.\\.\\.)|: |:$| #|^ | $" $s }}{{ $quote = true }}{{ end }}
{{- if $quote }}{{ printf "'%s'" (replace "'" "''" $s) }}{{ else }}{{ $s }}{{ end }}
{{- end }}

{{/* Escapes what is special in both Python's re and Rust's regex (as src/registration.rs does). */}}
{{- define "openmeet-appservice.regexEscape" -}}
{{- regexReplaceAll "([\\\\.+*?()|\\[\\]{}^$])" . "\\${1}" }}
{{- end }}

{{/* The registration, byte for byte as `openmeet-appservice registration` prints it. */}}
{{- define "openmeet-appservice.registration" -}}
{{- include "openmeet-appservice.computeSecrets" . }}
{{- $s := .Values._openmeetSecrets }}
{{- $as := .Values.config.appservice }}
{{- $server := include "openmeet-appservice.regexEscape" .Values.config.homeserver.server_name }}
{{- $sender := $as.sender_localpart }}
{{- $rest := trimPrefix $sender $as.bot_prefix }}
{{- $users := list }}
{{- if and (hasPrefix $sender $as.bot_prefix) $rest }}
{{- $users = list (printf "@%s(%s[a-z0-9._=/-]+)?:%s" (include "openmeet-appservice.regexEscape" $sender) (include "openmeet-appservice.regexEscape" $rest) $server) }}
{{- else }}
{{- $users = list (printf "@%s:%s" (include "openmeet-appservice.regexEscape" $sender) $server) (printf "@%s[a-z0-9._=/-]+:%s" (include "openmeet-appservice.regexEscape" $as.bot_prefix) $server) }}
{{- end -}}
id: {{ include "openmeet-appservice.yamlString" $as.id }}
url: {{ include "openmeet-appservice.yamlString" (include "openmeet-appservice.registrationUrl" .) }}
as_token: {{ include "openmeet-appservice.yamlString" $s.as_token }}
hs_token: {{ include "openmeet-appservice.yamlString" (first $s.hs_token) }}
sender_localpart: {{ include "openmeet-appservice.yamlString" $sender }}
rate_limited: false
receive_ephemeral: false
namespaces:
  users:
{{- range $users }}
  - exclusive: true
    regex: {{ include "openmeet-appservice.yamlString" . }}
{{- end }}
  aliases:
  - exclusive: true
    regex: {{ include "openmeet-appservice.yamlString" (printf "#(event|group)-.+:%s" $server) }}
  rooms: []
{{ end }}

{{/* The daemon's config: the operator's `config` plus what the chart owns. */}}
{{- define "openmeet-appservice.config" -}}
{{- include "openmeet-appservice.computeSecrets" . }}
{{- $s := .Values._openmeetSecrets }}
{{- $dir := include "openmeet-appservice.secretsDir" . }}
{{- $c := deepCopy .Values.config }}
{{- $appservice := merge (dict
      "url" (include "openmeet-appservice.registrationUrl" .)
      "as_token_file" (printf "%s/as_token" $dir)
      "hs_token_file" (printf "%s/hs_token" $dir)) ($c.appservice | default dict) }}
{{- $_ := set $c "appservice" $appservice }}
{{- $_ := set $c "listen" (dict
      "appservice" (printf "0.0.0.0:%d" (int .Values.service.ports.appservice))
      "platform" (printf "0.0.0.0:%d" (int .Values.service.ports.platform))
      "metrics" (printf "0.0.0.0:%d" (int .Values.service.ports.metrics))) }}
{{- $database := deepCopy ($c.database | default dict) }}
{{- $_ := set $database "migrate_on_start" false }}
{{- if include "openmeet-appservice.sqlite" . }}
{{- $_ := set $database "url" "sqlite:///data/openmeet-appservice.db" }}
{{- else }}
{{- $_ := set $database "url_file" (printf "%s/database_url" $dir) }}
{{- end }}
{{- $_ := set $c "database" $database }}
{{- $tenants := list }}
{{- range .Values.tenants }}
{{- $tenant := dict "id" .id "name" .name "api_token_file" (printf "%s/%s" $dir (include "openmeet-appservice.tenantKey" .id)) }}
{{- if .webhook }}
{{- $_ := set $tenant "webhook" (dict "url" .webhook.url "secret_file" (printf "%s/%s" $dir (include "openmeet-appservice.webhookKey" .id))) }}
{{- end }}
{{- $tenants = append $tenants $tenant }}
{{- end }}
{{- $_ := set $c "tenants" $tenants }}
{{- if .Values.tokens.adminToken }}
{{- $_ := set $c "admin_token_file" (printf "%s/admin_token" $dir) }}
{{- end }}
{{- toYaml $c }}
{{- end }}

{{/* What the pods' checksum/secrets annotation covers: every secret value the chart knows. */}}
{{- define "openmeet-appservice.secretsChecksum" -}}
{{- include "openmeet-appservice.computeSecrets" . }}
{{- $s := .Values._openmeetSecrets }}
{{- $tenantRefs := list }}
{{- range .Values.tenants }}{{ if .existingSecret }}{{ $tenantRefs = append $tenantRefs (list .id .existingSecret .existingSecretKey) }}{{ end }}{{ with .webhook }}{{ $tenantRefs = append $tenantRefs (list "webhook" .existingSecret .existingSecretKey) }}{{ end }}{{ end }}
{{- toJson (list $s .Values.tokens.existingSecret .Values.database.existingSecret .Values.database.existingSecretKey $tenantRefs) | sha256sum }}
{{- end }}
