/**
 * Route actions: what a route does once its filters let a request through. One folder per action
 * (compile, run, describe, tests); this file is the explicit list, so the request path dispatches on
 * the compiled action's `kind` and a new action is a folder plus a line in each switch below.
 */
import type { RouteConfig } from '../../api/config.ts';
import type { RouteAction } from '../compiled.ts';
import type { StreamContext } from '../context.ts';
import type { UpstreamService } from '../upstream/service.ts';
import {
  aggregateServiceNames,
  aggregateServices,
  compileAggregate,
  describeAggregate,
  isAggregate,
} from './aggregate/action.ts';
import { runAggregate } from './aggregate/aggregate.ts';
import { compileDirect, describeDirect, isDirect, runDirect } from './direct/action.ts';
import { compileForward, describeForward, destinationsOf, isForward } from './forward/action.ts';
import { runForward } from './forward/forward.ts';
import { compileGraphql, describeGraphql, graphqlServiceNames, isGraphql } from './graphql/action.ts';
import { runGraphql } from './graphql/graphql.ts';
import { compileRedirect, describeRedirect, isRedirect, runRedirect } from './redirect/action.ts';
import { compileTranscode, describeTranscode, isTranscode, transcodeServiceNames } from './transcode/action.ts';
import { runTranscode } from './transcode/transcode.ts';

/** Compiles the route's action; the config was validated, so exactly one action is set. */
export function compileAction(rc: RouteConfig, services: ReadonlyMap<string, UpstreamService>): RouteAction {
  if (isDirect(rc)) return compileDirect(rc);
  if (isRedirect(rc)) return compileRedirect(rc);
  if (isForward(rc)) return compileForward(rc, services);
  if (isAggregate(rc)) return compileAggregate(rc, services);
  if (isGraphql(rc)) return compileGraphql(rc, services);
  if (isTranscode(rc)) return compileTranscode(rc, services);
  throw new Error(`route ${rc.name} has no action`);
}

/** Names of the services the route's action may send to, in config order (for plugin scoping). */
export function actionServiceNames(rc: RouteConfig): string[] {
  if (isAggregate(rc)) return aggregateServiceNames(rc);
  if (isGraphql(rc)) return graphqlServiceNames(rc);
  if (isTranscode(rc)) return transcodeServiceNames(rc);
  return isForward(rc) ? destinationsOf(rc).map((d) => d.service) : [];
}

/** The services a compiled action may send to (for metrics and logs before a destination is chosen). */
export function actionServices(action: RouteAction): UpstreamService[] {
  if (action.kind === 'aggregate') return aggregateServices(action);
  if (action.kind === 'graphql') return [action.destination.service];
  if (action.kind === 'transcode') return [action.destination.service];
  return action.kind === 'forward' ? action.destinations.map((d) => d.service) : [];
}

/** Runs the route's action for a request whose filters have all continued. */
export function runAction(ctx: StreamContext): void {
  const action = ctx.route!.action;
  switch (action.kind) {
    case 'forward':
      runForward(ctx, action);
      return;
    case 'direct':
      runDirect(ctx, action);
      return;
    case 'redirect':
      runRedirect(ctx, action);
      return;
    case 'aggregate':
      runAggregate(ctx, action);
      return;
    case 'graphql':
      runGraphql(ctx, action);
      return;
    case 'transcode':
      runTranscode(ctx, action);
      return;
  }
}

/** The action as the admin API and `proxy-config routes` show it. */
export function describeAction(action: RouteAction, rc: RouteConfig): Record<string, unknown> {
  switch (action.kind) {
    case 'forward':
      return describeForward(action, rc);
    case 'direct':
      return describeDirect(action);
    case 'redirect':
      return describeRedirect(action, rc);
    case 'aggregate':
      return describeAggregate(action);
    case 'graphql':
      return describeGraphql(action);
    case 'transcode':
      return describeTranscode(action, rc);
  }
}
