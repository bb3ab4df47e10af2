{{/* Pod parts shared by the Deployment and the `helm test` pod. */}}

{{- define "openmeet-appservice.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "openmeet-appservice.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The config, the secrets (one projected directory) and a writable /tmp. */}}
{{- define "openmeet-appservice.volumes" -}}
- name: config
  configMap:
    name: {{ include "openmeet-appservice.fullname" . }}
- name: secrets
  projected:
    defaultMode: 0440
    sources:
      - secret:
          name: {{ include "openmeet-appservice.fullname" . }}-tokens
          {{- $items := list }}
          {{- if not .Values.tokens.existingSecret }}
          {{- $items = concat $items (list "as_token" "hs_token") }}
          {{- if .Values.tokens.adminToken }}{{ $items = append $items "admin_token" }}{{ end }}
          {{- end }}
          {{- range .Values.homeservers }}{{ if not (.tokens | default dict).existingSecret }}{{ $items = concat $items (list (include "openmeet-appservice.homeserverKey" (list .id "as_token")) (include "openmeet-appservice.homeserverKey" (list .id "hs_token"))) }}{{ end }}{{ end }}
          {{- range .Values.tenants }}{{ if not .existingSecret }}{{ $items = append $items (include "openmeet-appservice.tenantKey" .id) }}{{ end }}{{ end }}
          {{- if .Values.database.url }}{{ $items = append $items "database_url" }}{{ end }}
          items:
            {{- range $items }}
            - {key: {{ . | quote }}, path: {{ . | quote }}}
            {{- end }}
      {{- with .Values.tokens.existingSecret }}
      - secret:
          name: {{ . }}
          items:
            - {key: as_token, path: as_token}
            - {key: hs_token, path: hs_token}
            {{- if $.Values.tokens.adminToken }}
            - {key: admin_token, path: admin_token}
            {{- end }}
      {{- end }}
      {{- range $entry := .Values.homeservers }}
      {{- with ($entry.tokens | default dict).existingSecret }}
      - secret:
          name: {{ . }}
          items:
            - {key: as_token, path: {{ include "openmeet-appservice.homeserverKey" (list $entry.id "as_token") | quote }}}
            - {key: hs_token, path: {{ include "openmeet-appservice.homeserverKey" (list $entry.id "hs_token") | quote }}}
      {{- end }}
      {{- end }}
      {{- range .Values.tenants }}
      {{- if .existingSecret }}
      - secret:
          name: {{ .existingSecret }}
          items:
            - {key: {{ .existingSecretKey | default "api_token" | quote }}, path: {{ include "openmeet-appservice.tenantKey" .id | quote }}}
      {{- end }}
      {{- if .webhook }}
      - secret:
          name: {{ .webhook.existingSecret }}
          items:
            - {key: {{ .webhook.existingSecretKey | default "webhook_secret" | quote }}, path: {{ include "openmeet-appservice.webhookKey" .id | quote }}}
      {{- end }}
      {{- end }}
      {{- with (.Values.antispam | default dict).existingSecret }}
      - secret:
          name: {{ . }}
          items:
            - {key: {{ $.Values.antispam.existingSecretKey | default "antispam_token" | quote }}, path: antispam_token}
      {{- end }}
      {{- with .Values.database.existingSecret }}
      - secret:
          name: {{ . }}
          items:
            - {key: {{ $.Values.database.existingSecretKey | quote }}, path: database_url}
      {{- end }}
- name: tmp
  emptyDir:
    medium: Memory
    sizeLimit: 16Mi
{{- end }}

{{- define "openmeet-appservice.volumeMounts" -}}
- name: config
  mountPath: /etc/openmeet-appservice
  readOnly: true
- name: secrets
  mountPath: {{ include "openmeet-appservice.secretsDir" . }}
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- end }}
