/**
 * Validates rendered manifests against the Kubernetes schemas, offline, from npm packages:
 *
 * - `kubernetes-models` (and `@kubernetes-models/prometheus-operator` for the CRDs): JSON-schema
 *   validators generated from the Kubernetes OpenAPI spec — required fields, types, formats.
 * - Those schemas allow unknown fields, as the API server's non-strict decoding does; `kubectl apply
 *   --validate=strict` and kubeconform -strict do not. So core kinds are also walked against the
 *   field lists of `@kubernetes/client-node`'s generated models (OpenAPI v1.34): a misspelt or
 *   misplaced field is an error.
 */
import * as k8s from '@kubernetes/client-node';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import type { Manifest } from './helm.js';

interface Validatable {
  validate(): void;
}
type ModelClass = new (data: never) => Validatable;

/** apiVersion/kind → its kubernetes-models class and (for core kinds) its client-node model. */
const KINDS: Readonly<Record<string, { readonly model: ModelClass; readonly clientModel?: string }>> = {
  'v1/ConfigMap': { model: ConfigMap, clientModel: 'V1ConfigMap' },
  'v1/Service': { model: Service, clientModel: 'V1Service' },
  'v1/ServiceAccount': { model: ServiceAccount, clientModel: 'V1ServiceAccount' },
  'apps/v1/Deployment': { model: Deployment, clientModel: 'V1Deployment' },
  'policy/v1/PodDisruptionBudget': {
    model: PodDisruptionBudget,
    clientModel: 'V1PodDisruptionBudget',
  },
  'networking.k8s.io/v1/Ingress': { model: Ingress, clientModel: 'V1Ingress' },
  'networking.k8s.io/v1/NetworkPolicy': {
    model: NetworkPolicy,
    clientModel: 'V1NetworkPolicy',
  },
  'rbac.authorization.k8s.io/v1/Role': { model: Role, clientModel: 'V1Role' },
  'rbac.authorization.k8s.io/v1/RoleBinding': {
    model: RoleBinding,
    clientModel: 'V1RoleBinding',
  },
  'monitoring.coreos.com/v1/PodMonitor': { model: PodMonitor },
  'monitoring.coreos.com/v1/PrometheusRule': { model: PrometheusRule },
  'monitoring.coreos.com/v1/ServiceMonitor': { model: ServiceMonitor },
};

interface Attribute {
  readonly baseName: string;
  readonly type: string;
}

function attributesOf(type: string): readonly Attribute[] | undefined {
  const model = (k8s as unknown as Record<string, { getAttributeTypeMap?: () => Attribute[] } | undefined>)[
    type
  ];
  return typeof model?.getAttributeTypeMap === 'function' ? model.getAttributeTypeMap() : undefined;
}

const PRIMITIVE: Readonly<Record<string, (v: unknown) => boolean>> = {
  string: (v) => typeof v === 'string',
  number: (v) => typeof v === 'number',
  boolean: (v) => typeof v === 'boolean',
  Date: (v) => typeof v === 'string',
  IntOrString: (v) => typeof v === 'string' || (typeof v === 'number' && Number.isInteger(v)),
  any: () => true,
  object: (v) => typeof v === 'object' && v !== null,
};

/** Unknown fields and wrong primitive types, by the client-node model of `type`. */
function strictErrors(value: unknown, type: string, path: string, errors: string[]): void {
  if (value === null || value === undefined) return;
  const array = /^Array<(.+)>$/.exec(type);
  if (array?.[1]) {
    if (!Array.isArray(value)) errors.push(`${path}: expected a list (${type})`);
    else value.forEach((item, i) => strictErrors(item, array[1] as string, `${path}[${i}]`, errors));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map?.[1]) {
    if (typeof value !== 'object' || Array.isArray(value)) errors.push(`${path}: expected a map (${type})`);
    else for (const [k, v] of Object.entries(value)) strictErrors(v, map[1], `${path}.${k}`, errors);
    return;
  }
  const primitive = PRIMITIVE[type];
  if (primitive) {
    if (!primitive(value)) errors.push(`${path}: expected ${type}, got ${JSON.stringify(value)}`);
    return;
  }
  const attributes = attributesOf(type);
  if (!attributes) {
    errors.push(`${path}: no client-node model ${type} to check against`);
    return;
  }
  if (typeof value !== 'object' || Array.isArray(value)) {
    errors.push(`${path}: expected an object (${type})`);
    return;
  }
  const known = new Map(attributes.map((a) => [a.baseName, a.type]));
  for (const [key, child] of Object.entries(value)) {
    const childType = known.get(key);
    if (childType === undefined) errors.push(`${path}.${key}: unknown field (${type})`);
    else strictErrors(child, childType, `${path}.${key}`, errors);
  }
}

/** Every problem with one manifest; empty when it is valid. */
export function validateManifest(doc: Manifest): string[] {
  const name = `${doc.kind}/${doc.metadata?.name ?? '?'}`;
  const entry = KINDS[`${doc.apiVersion}/${doc.kind}`];
  if (!entry) return [`${name}: no schema for apiVersion ${doc.apiVersion} kind ${doc.kind}`];
  const errors: string[] = [];
  try {
    new entry.model(doc as never).validate();
  } catch (error) {
    errors.push(`${name}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (entry.clientModel) strictErrors(doc, entry.clientModel, name, errors);
  return errors;
}

/** Problems with every manifest, flattened. */
export function validateAll(docs: readonly Manifest[]): string[] {
  return docs.flatMap(validateManifest);
}
