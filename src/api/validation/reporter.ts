// Collects a resource's diagnostics with positions, so validators only say what and where.
import type { Diagnostic, Severity } from '../diagnostic.ts';
import { formatPath } from '../diagnostic.ts';
import { displayKind } from '../kinds.ts';
import type { Resource } from '../resource.ts';
import type { FieldPath, Locator } from '../source-map.ts';

export class Reporter {
  readonly diagnostics: Diagnostic[] = [];
  readonly resource: Resource;
  readonly #locator: Locator;
  readonly #ident: string;

  constructor(resource: Resource, locator: Locator) {
    this.resource = resource;
    this.#locator = locator;
    this.#ident = `${displayKind(resource.kind)} ${resource.metadata.namespace ? resource.metadata.namespace + '/' : ''}${resource.metadata.name}`;
  }

  error(path: FieldPath, message: string, hint?: string, opts?: { key?: boolean }): void {
    this.add('Error', path, message, hint, opts);
  }

  warn(path: FieldPath, message: string, hint?: string, opts?: { key?: boolean }): void {
    this.add('Warning', path, message, hint, opts);
  }

  add(severity: Severity, path: FieldPath, message: string, hint?: string, opts?: { key?: boolean }): void {
    this.diagnostics.push({
      severity,
      code: 'IST0106',
      message,
      hint,
      source: this.#locator.locate(path, opts) ?? this.resource.source,
      resource: this.#ident,
      path: formatPath(path),
    });
  }

  get hasErrors(): boolean {
    return this.diagnostics.some((d) => d.severity === 'Error');
  }
}
