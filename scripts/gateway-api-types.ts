// The Gateway API types scripts/generate-api-schemas.ts turns into JSON schemas (every served
// version of a kind shares its v1 spec type, BackendTLSPolicy's v1alpha3 too, but TLSRoute's: its
// v1alpha2 spec, whose hostnames are optional; v1alpha3 and v1 require them, a semantic rule).
import type { IGatewayClassSpec } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/GatewayClassSpec';
import type { IGatewaySpec } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/GatewaySpec';
import type { IHTTPRouteSpec } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRouteSpec';
import type { IGRPCRouteSpec } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/GRPCRouteSpec';
import type { ITCPRouteSpec } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1alpha2/TCPRouteSpec';
import type { ITLSRouteSpec } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1alpha2/TLSRouteSpec';
import type { IBackendTLSPolicySpec } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/BackendTLSPolicySpec';
import type { IListenerSetSpec } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/ListenerSetSpec';
import type { IReferenceGrantSpec } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/ReferenceGrantSpec';

export type GatewayClassSpec = IGatewayClassSpec;
export type GatewaySpec = IGatewaySpec;
export type HTTPRouteSpec = IHTTPRouteSpec;
export type GRPCRouteSpec = IGRPCRouteSpec;
export type ReferenceGrantSpec = IReferenceGrantSpec;
export type ListenerSetSpec = IListenerSetSpec;
export type TCPRouteSpec = ITCPRouteSpec;
export type TLSRouteSpec = ITLSRouteSpec;
export type BackendTLSPolicySpec = IBackendTLSPolicySpec;
