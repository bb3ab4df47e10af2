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

{{/*
The number of replicas: replicaCount, or when it is not set 2 on PostgreSQL and 1 on SQLite. SQLite
is one process's file, so on it the count is forced to 1 (DESIGN §12; NOTES.txt says so when
replicaCount asked for more); several replicas share one worker id only by mistake (each would take
the others' leases), so a fixed config.jobs.worker_id is refused with more than one.
*/}}
{{- define "openmeet-appservice.replicas" -}}
{{- $sqlite := include "openmeet-appservice.sqlite" . }}
{{- $count := .Values.replicaCount | default (ternary 1 2 (eq $sqlite "true")) | int }}
{{- if $sqlite }}{{ $count = 1 }}{{ end }}
{{- with (.Values.config.jobs | default dict).worker_id }}
{{- if gt $count 1 }}
{{- fail (printf "config.jobs.worker_id is %q, but %d replicas would all claim jobs and leases under that one name and take each other's: remove config.jobs.worker_id; the chart names each replica's worker after its pod." . $count) }}
{{- end }}
{{- end }}
{{- $count }}
{{- end }}

{{/*
The pods' affinity: the operator's `affinity`, plus, when more than one replica runs, an
anti-affinity on the chart's selector labels (podAntiAffinity.type preferred or required) unless
`affinity` has a podAntiAffinity of its own. Empty when there is nothing to say.
*/}}
{{- define "openmeet-appservice.affinity" -}}
{{- $affinity := deepCopy (.Values.affinity | default dict) }}
{{- $anti := .Values.podAntiAffinity }}
{{- if and (gt (int (include "openmeet-appservice.replicas" .)) 1) (ne $anti.type "none") (not (hasKey $affinity "podAntiAffinity")) }}
{{- $term := dict "labelSelector" (dict "matchLabels" (include "openmeet-appservice.selectorLabels" . | fromYaml)) "topologyKey" $anti.topologyKey }}
{{- if eq $anti.type "required" }}
{{- $_ := set $affinity "podAntiAffinity" (dict "requiredDuringSchedulingIgnoredDuringExecution" (list $term)) }}
{{- else }}
{{- $_ := set $affinity "podAntiAffinity" (dict "preferredDuringSchedulingIgnoredDuringExecution" (list (dict "weight" (int $anti.weight) "podAffinityTerm" $term))) }}
{{- end }}
{{- end }}
{{- if $affinity }}{{ toYaml $affinity }}{{ end }}
{{- end }}

{{/*
The pods' topology spread constraints when more than one replica runs: topologySpreadConstraints,
each without a labelSelector given the chart's selector labels. Empty for one replica or [].
*/}}
{{- define "openmeet-appservice.topologySpreadConstraints" -}}
{{- if gt (int (include "openmeet-appservice.replicas" .)) 1 }}
{{- $selector := dict "matchLabels" (include "openmeet-appservice.selectorLabels" . | fromYaml) }}
{{- $constraints := list }}
{{- range .Values.topologySpreadConstraints }}
{{- $constraint := deepCopy . }}
{{- if not (hasKey $constraint "labelSelector") }}{{ $_ := set $constraint "labelSelector" $selector }}{{ end }}
{{- $constraints = append $constraints $constraint }}
{{- end }}
{{- with $constraints }}{{ toYaml . }}{{ end }}
{{- end }}
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
{{- include "openmeet-appservice.normalizedUrl" (.Values.registration.url | default (printf "http://%s.%s.svc:%d" (include "openmeet-appservice.fullname" .) .Release.Namespace (int .Values.service.ports.appservice))) }}
{{- end }}

{{/* A homeservers[] entry's registration URL (list $root $entry): its own registration.url, or
     the top-level one (the same Service). */}}
{{- define "openmeet-appservice.homeserverRegistrationUrl" -}}
{{- $root := index . 0 }}{{ $entry := index . 1 }}
{{- with ($entry.registration | default dict).url }}{{ include "openmeet-appservice.normalizedUrl" . }}{{ else }}{{ include "openmeet-appservice.registrationUrl" $root }}{{ end }}
{{- end }}

{{/* A URL as the daemon's URL parser keeps it: default port dropped, no trailing slash. */}}
{{- define "openmeet-appservice.normalizedUrl" -}}
{{- $url := regexReplaceAll "^(http://[^/:]+):80(/|$)" . "${1}${2}" }}
{{- $url = regexReplaceAll "^(https://[^/:]+):443(/|$)" $url "${1}${2}" }}
{{- trimSuffix "/" $url }}
{{- end }}

{{/* The chart Secret's key of a homeservers[] entry's token (list $id "as_token"|"hs_token"). */}}
{{- define "openmeet-appservice.homeserverKey" -}}
{{- printf "homeserver.%s.%s" (index . 0) (index . 1) }}
{{- end }}

{{/*
The chart-managed secrets, computed once per render and cached, so that the token Secret, the
registration Secret and the checksum annotation agree: a value given in values.yaml wins, then what
the release's Secret already holds (kept across upgrades), then a fresh 64-hex-character token.
Returns nothing; read `.Values._openmeetSecrets` afterwards (keys: as_token, hs_token (a list),
admin_token, tenants (key → token), homeservers (id → as_token, hs_token), database_url). Tokens
from an existing Secret are there only when the cluster could be asked for it.
*/}}
{{- define "openmeet-appservice.computeSecrets" -}}
{{- if not (hasKey .Values "_openmeetSecrets") }}
{{- $name := printf "%s-tokens" (include "openmeet-appservice.fullname" .) }}
{{- $stored := (lookup "v1" "Secret" .Release.Namespace $name).data | default dict }}
{{- include "openmeet-appservice.checkHomeservers" . }}
{{- $s := dict "tenants" dict "homeservers" dict }}
{{- $existing := include "openmeet-appservice.appserviceTokens" (dict "namespace" .Release.Namespace "tokens" .Values.tokens "stored" $stored "asKey" "as_token" "hsKey" "hs_token" "out" $s) | fromJson }}
{{- if .Values.tokens.existingSecret }}
{{- if and $s.as_token (hasKey $existing "admin_token") }}{{ $_ := set $s "admin_token" (b64dec $existing.admin_token | trim) }}{{ end }}
{{- else if .Values.tokens.adminToken }}
{{- $_ := set $s "admin_token" (include "openmeet-appservice.storedOrNew" (list $stored "admin_token")) }}
{{- end }}
{{- range .Values.homeservers }}
{{- $h := dict }}
{{- $_ := include "openmeet-appservice.appserviceTokens" (dict "namespace" $.Release.Namespace "tokens" (.tokens | default dict) "stored" $stored "asKey" (include "openmeet-appservice.homeserverKey" (list .id "as_token")) "hsKey" (include "openmeet-appservice.homeserverKey" (list .id "hs_token")) "out" $h) }}
{{- $_ := set $s.homeservers .id $h }}
{{- end }}
{{- include "openmeet-appservice.checkDistinctTokens" $s }}
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

{{/*
One appservice's as_token and hs_token (a list), set into .out: from the Secret .tokens.existingSecret
(keys as_token, hs_token; nothing when the cluster cannot be asked), else .tokens.asToken/hsToken, else
what the release's Secret .stored holds under .asKey/.hsKey, else fresh tokens. Returns the existing
Secret's data as JSON (the top level reads admin_token from it).
*/}}
{{- define "openmeet-appservice.appserviceTokens" -}}
{{- $out := .out }}{{ $stored := .stored }}
{{- $existing := dict }}
{{- if .tokens.existingSecret }}
{{- $existing = (lookup "v1" "Secret" .namespace .tokens.existingSecret).data | default dict }}
{{- if and (hasKey $existing "as_token") (hasKey $existing "hs_token") }}
{{- $_ := set $out "as_token" (b64dec $existing.as_token | trim) }}
{{- $_ := set $out "hs_token" (include "openmeet-appservice.tokenLines" (b64dec $existing.hs_token) | fromJsonArray) }}
{{- end }}
{{- else }}
{{- $_ := set $out "as_token" (.tokens.asToken | default (include "openmeet-appservice.storedOrNew" (list $stored .asKey))) }}
{{- $hs := .tokens.hsToken }}
{{- if kindIs "slice" $hs }}
{{- $_ := set $out "hs_token" $hs }}
{{- else if $hs }}
{{- $_ := set $out "hs_token" (list $hs) }}
{{- else if hasKey $stored .hsKey }}
{{- $_ := set $out "hs_token" (include "openmeet-appservice.tokenLines" (b64dec (index $stored .hsKey)) | fromJsonArray) }}
{{- else }}
{{- $_ := set $out "hs_token" (list (include "openmeet-appservice.storedOrNew" (list $stored .hsKey))) }}
{{- end }}
{{- end }}
{{- toJson $existing }}
{{- end }}

{{/*
What the schema cannot say about homeservers[]: ids and server names are each used once, and
every tenants[].homeserver names one of them (or "default"). The daemon checks the same at load;
here a mistake stops the release before any pod runs on it.
*/}}
{{- define "openmeet-appservice.checkHomeservers" -}}
{{- $ids := list "default" }}
{{- $names := dict .Values.config.homeserver.server_name "the top-level config.homeserver" }}
{{- range $i, $entry := .Values.homeservers }}
{{- if has $entry.id $ids }}
{{- fail (printf "homeservers[%d].id %q is used twice (or is \"default\", the top-level homeserver's id): give each homeserver its own id." $i $entry.id) }}
{{- end }}
{{- $ids = append $ids $entry.id }}
{{- with index $names $entry.homeserver.server_name }}
{{- fail (printf "homeservers[%d] (%s) has the server_name %s of %s: each homeserver is its own Matrix server; list it once." $i $entry.id $entry.homeserver.server_name .) }}
{{- end }}
{{- $_ := set $names $entry.homeserver.server_name (printf "homeservers %q" $entry.id) }}
{{- end }}
{{- range .Values.tenants }}
{{- if and .homeserver (not (has .homeserver $ids)) }}
{{- fail (printf "tenants %q: homeserver %q is not one of homeservers[].id (%s); add it to homeservers or leave homeserver out for the top-level one." .id .homeserver (join ", " (rest $ids) | default "none listed")) }}
{{- end }}
{{- end }}
{{- include "openmeet-appservice.checkTenantMoves" . }}
{{- end }}

{{/*
A tenant's rooms live on its homeserver. The daemon refuses a SIGHUP or a start that moves a
tenant with rooms; the new pods of a rolled upgrade would then fail to start. So the upgrade itself
is refused first when it puts a tenant on another homeserver than the release's config had (read
back with lookup; offline renders cannot check), unless tenants[].movedFrom names the homeserver
it leaves: the operator's word that its rooms there are deleted.
*/}}
{{- define "openmeet-appservice.checkTenantMoves" -}}
{{- $previous := (lookup "v1" "ConfigMap" .Release.Namespace (include "openmeet-appservice.fullname" .)).data | default dict }}
{{- with index $previous "config.yaml" }}
{{- $before := dict }}
{{- range (fromYaml .).tenants | default list }}{{ $_ := set $before .id (.homeserver | default "default") }}{{ end }}
{{- range $.Values.tenants }}
{{- $was := index $before .id }}
{{- $now := .homeserver | default "default" }}
{{- if and $was (ne $was $now) (ne (.movedFrom | default "") $was) }}
{{- fail (printf "tenants %q: homeserver changes from %q to %q, but its rooms live on %q and stay there (the daemon refuses this on a SIGHUP, not when the pods roll): delete the tenant's rooms through the platform API and wait for their teardown jobs, then upgrade with tenants[].movedFrom: %s to confirm, and declare the rooms anew (docs/operations.md, \"Move a tenant to another homeserver\")." .id $was $now $was $was) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Every homeserver needs its own as_token and hs_token: the hs_token tells which one calls. */}}
{{- define "openmeet-appservice.checkDistinctTokens" -}}
{{- $seen := dict }}
{{- $all := list (list "the top-level tokens" .) }}
{{- range $id, $h := .homeservers }}{{ $all = append $all (list (printf "homeservers %q" $id) $h) }}{{ end }}
{{- range $all }}
{{- $who := index . 0 }}{{ $t := index . 1 }}
{{- range concat (list ($t.as_token | default "")) ($t.hs_token | default list) }}
{{- if . }}
{{- with index $seen (sha256sum .) }}
{{- if ne . $who }}{{ fail (printf "%s and %s share a token: each homeserver needs its own as_token and hs_token (the hs_token tells which homeserver calls)." . $who) }}{{ end }}
{{- end }}
{{- $_ := set $seen (sha256sum .) $who }}
{{- end }}
{{- end }}
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

{{/* The top-level homeserver's registration, byte for byte as `openmeet-appservice registration`
     prints it. */}}
{{- define "openmeet-appservice.registration" -}}
{{- include "openmeet-appservice.computeSecrets" . }}
{{- $s := .Values._openmeetSecrets }}
{{- $as := .Values.config.appservice }}
{{- include "openmeet-appservice.registrationOf" (dict
      "id" $as.id "sender_localpart" $as.sender_localpart "bot_prefix" $as.bot_prefix
      "server_name" .Values.config.homeserver.server_name
      "url" (include "openmeet-appservice.registrationUrl" .)
      "as_token" $s.as_token "hs_token" (first $s.hs_token)) }}
{{- end }}

{{/* A homeservers[] entry's registration (list $root $entry), byte for byte as
     `openmeet-appservice registration --homeserver ID` prints it: id, sender_localpart and
     bot_prefix default to the top-level appservice's. */}}
{{- define "openmeet-appservice.homeserverRegistration" -}}
{{- $root := index . 0 }}{{ $entry := index . 1 }}
{{- include "openmeet-appservice.computeSecrets" $root }}
{{- $tokens := index $root.Values._openmeetSecrets.homeservers $entry.id }}
{{- $as := merge (deepCopy ($entry.appservice | default dict)) $root.Values.config.appservice }}
{{- include "openmeet-appservice.registrationOf" (dict
      "id" $as.id "sender_localpart" $as.sender_localpart "bot_prefix" $as.bot_prefix
      "server_name" $entry.homeserver.server_name
      "url" (include "openmeet-appservice.homeserverRegistrationUrl" (list $root $entry))
      "as_token" $tokens.as_token "hs_token" (first $tokens.hs_token)) }}
{{- end }}

{{/* One registration from (dict id sender_localpart bot_prefix server_name url as_token hs_token),
     rendered by the rules of src/registration.rs and config/namespaces.rs. */}}
{{- define "openmeet-appservice.registrationOf" -}}
{{- $server := include "openmeet-appservice.regexEscape" .server_name }}
{{- $sender := .sender_localpart }}
{{- $rest := trimPrefix $sender .bot_prefix }}
{{- $users := list }}
{{- if and (hasPrefix $sender .bot_prefix) $rest }}
{{- $users = list (printf "@%s(%s[a-z0-9._=/-]+)?:%s" (include "openmeet-appservice.regexEscape" $sender) (include "openmeet-appservice.regexEscape" $rest) $server) }}
{{- else }}
{{- $users = list (printf "@%s:%s" (include "openmeet-appservice.regexEscape" $sender) $server) (printf "@%s[a-z0-9._=/-]+:%s" (include "openmeet-appservice.regexEscape" .bot_prefix) $server) }}
{{- end -}}
id: {{ include "openmeet-appservice.yamlString" .id }}
url: {{ include "openmeet-appservice.yamlString" .url }}
as_token: {{ include "openmeet-appservice.yamlString" .as_token }}
hs_token: {{ include "openmeet-appservice.yamlString" .hs_token }}
sender_localpart: {{ include "openmeet-appservice.yamlString" $sender }}
rate_limited: false
receive_ephemeral: false
protocols:
- openmeet
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
{{- if (.Values.antispam | default dict).existingSecret }}
{{- $_ := set $appservice "antispam_token_file" (printf "%s/antispam_token" $dir) }}
{{- end }}
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
{{- $homeservers := list }}
{{- range .Values.homeservers }}
{{- $entryAppservice := merge (dict
      "url" (include "openmeet-appservice.homeserverRegistrationUrl" (list $ .))
      "as_token_file" (printf "%s/%s" $dir (include "openmeet-appservice.homeserverKey" (list .id "as_token")))
      "hs_token_file" (printf "%s/%s" $dir (include "openmeet-appservice.homeserverKey" (list .id "hs_token")))) (deepCopy (.appservice | default dict)) }}
{{- $homeservers = append $homeservers (dict "id" .id "homeserver" (deepCopy .homeserver) "appservice" $entryAppservice) }}
{{- end }}
{{- if $homeservers }}{{ $_ := set $c "homeservers" $homeservers }}{{ end }}
{{- $tenants := list }}
{{- range .Values.tenants }}
{{- $tenant := dict "id" .id "name" .name "api_token_file" (printf "%s/%s" $dir (include "openmeet-appservice.tenantKey" .id)) }}
{{- with .homeserver }}{{ $_ := set $tenant "homeserver" . }}{{ end }}
{{- if .serverDirectory }}{{ $_ := set $tenant "server_directory" true }}{{ end }}
{{- with .rules }}{{ $_ := set $tenant "rules" (deepCopy .) }}{{ end }}
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
{{- $refs := list $s .Values.tokens.existingSecret .Values.database.existingSecret .Values.database.existingSecretKey $tenantRefs }}
{{- range .Values.homeservers }}{{ with (.tokens | default dict).existingSecret }}{{ $refs = append $refs . }}{{ end }}{{ end }}
{{- with .Values.antispam }}{{ $refs = append $refs (list "antispam" .existingSecret .existingSecretKey) }}{{ end }}
{{- toJson $refs | sha256sum }}
{{- end }}
