{{/* Names and labels. */}}
{{- define "wms.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "wms.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "wms.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "wms.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "wms.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "wms.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: wms
environment: {{ .Values.config.environment }}
{{- end -}}

{{/* Selector labels of one component (api | worker | migration). */}}
{{- define "wms.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wms.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "wms.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "wms.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "wms.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository .Values.image.tag -}}
{{- end -}}
{{- end -}}

{{/* Pod-level security: numeric non-root user, seccomp RuntimeDefault. */}}
{{- define "wms.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
fsGroup: 1000
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container-level security: the seed's context plus seccomp and no escalation. */}}
{{- define "wms.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Secret-backed environment. .root = context, .admin = include DATABASE_ADMIN_URL. */}}
{{- define "wms.secretEnv" -}}
{{- $s := .root.Values.secrets -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $s.existingSecret }}
      key: {{ $s.keys.databaseUrl }}
{{- if .admin }}
- name: DATABASE_ADMIN_URL
  valueFrom:
    secretKeyRef:
      name: {{ $s.existingSecret }}
      key: {{ $s.keys.databaseAdminUrl }}
{{- end }}
- name: WMS_API_KEY_PEPPER
  valueFrom:
    secretKeyRef:
      name: {{ $s.existingSecret }}
      key: {{ $s.keys.apiKeyPepper }}
{{- if $s.keys.redisUrl }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $s.existingSecret }}
      key: {{ $s.keys.redisUrl }}
      optional: true
{{- end }}
{{- if $s.keys.databaseReplicaUrl }}
- name: DATABASE_REPLICA_URL
  valueFrom:
    secretKeyRef:
      name: {{ $s.existingSecret }}
      key: {{ $s.keys.databaseReplicaUrl }}
{{- end }}
{{- end -}}

{{/* Non-secret settings (ConfigMap data). */}}
{{- define "wms.configData" -}}
{{- $c := .Values.config -}}
ENVIRONMENT: {{ $c.environment | quote }}
LOG_LEVEL: {{ $c.logLevel | quote }}
WMS_REGION: {{ $c.region | quote }}
PORT: {{ $c.port | quote }}
METRICS_PORT: {{ $c.metricsPort | quote }}
WMS_DRAIN_SECONDS: {{ $c.drainSeconds | quote }}
WMS_SHUTDOWN_TIMEOUT_SECONDS: {{ $c.shutdownTimeoutSeconds | quote }}
WMS_MIGRATE_ON_START: "false"
WMS_DATA_DIR: "/tmp/wms"
WMS_DOCS_ENABLED: {{ $c.docsEnabled | quote }}
WMS_STATEMENT_TIMEOUT_MS: {{ $c.statementTimeoutMs | quote }}
WMS_LOCK_TIMEOUT_MS: {{ $c.lockTimeoutMs | quote }}
{{- if $c.kafkaBrokers }}
KAFKA_BROKERS: {{ $c.kafkaBrokers | quote }}
{{- end }}
{{- if $c.otlpEndpoint }}
OTEL_EXPORTER_OTLP_ENDPOINT: {{ $c.otlpEndpoint | quote }}
{{- end }}
{{- range $k, $v := $c.extraEnv }}
{{ $k }}: {{ $v | quote }}
{{- end }}
{{- end -}}

{{/* Scratch volumes: the root filesystem is read-only. */}}
{{- define "wms.scratchVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.scratch.tmpSizeLimit }}
- name: cache
  emptyDir:
    sizeLimit: {{ .Values.scratch.cacheSizeLimit }}
{{- end -}}

{{- define "wms.scratchMounts" -}}
- name: tmp
  mountPath: /tmp
- name: cache
  mountPath: /app/cache
{{- end -}}

{{/* DESIGN §2 connection budget; fails the render when over 70 % of max_connections. */}}
{{- define "wms.connectionBudget" -}}
{{- $api := .Values.api -}}
{{- $apiPods := ternary $api.autoscaling.maxReplicas $api.replicas $api.autoscaling.enabled -}}
{{- $workers := ternary .Values.worker.replicas 0 .Values.worker.enabled -}}
{{- $total := add (mul $apiPods $api.dbPool.max) (mul $workers .Values.worker.dbPool.max) 1 -}}
{{- $limit := div (mul .Values.database.maxConnections 70) 100 -}}
{{- if gt (int64 $total) (int64 $limit) -}}
{{- fail (printf "connection budget exceeded: %d API pods x %d + %d workers x %d + 1 migration = %d > 70%% of database.maxConnections %d (= %d)" (int64 $apiPods) (int64 $api.dbPool.max) (int64 $workers) (int64 .Values.worker.dbPool.max) (int64 $total) (int64 .Values.database.maxConnections) (int64 $limit)) -}}
{{- end -}}
{{- $total -}}
{{- end -}}
