/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';
export type AlertLevel =
  | 'CRITICAL'
  | 'INFO'
  | 'WARNING';

export type CompletePaymentInput = {
  amount: number;
  lotId: string;
  method: PaymentMethod;
  /** Defaults to now. */
  paidAt?: string | null | undefined;
  ticketId: string;
};

export type IssueTicketInput = {
  customerName?: string | null | undefined;
  /** Defaults to now. */
  entryAt?: string | null | undefined;
  lotId: string;
  spaceNumber?: string | null | undefined;
  /** Defaults to a new UUID. */
  ticketId?: string | null | undefined;
  vehiclePlate: string;
};

export type PaymentMethod =
  | 'CARD'
  | 'CASH'
  | 'MOBILE'
  | 'OTHER';

export type RaiseParkingAlertInput = {
  actionRequired?: boolean | null | undefined;
  level: AlertLevel;
  lotId: string;
  message: string;
};

export type SetSpaceStateInput = {
  customerName?: string | null | undefined;
  lotId: string;
  spaceNumber: string;
  state: SpaceState;
  vehiclePlate?: string | null | undefined;
};

export type SpaceState =
  | 'FREE'
  | 'OCCUPIED'
  | 'OUT_OF_SERVICE'
  | 'RESERVED';

export type UpsertLotInput = {
  /** Occupancy 0-1 that raises the automatic alert (default 0.95). */
  alertThreshold?: number | null | undefined;
  lotId: string;
  name: string;
  /** Space labels to add (existing ones are kept). */
  spaces: Array<string>;
};

export type UpsertLotMutationVariables = Exact<{
  input: UpsertLotInput;
}>;


export type UpsertLotMutation = { upsertLot: { id: string, name: string, alertThreshold: number, stats: { totalSpaces: number, freeSpaces: number } } };

export type SetSpaceStateMutationVariables = Exact<{
  input: SetSpaceStateInput;
}>;


export type SetSpaceStateMutation = { setSpaceState: { channel: string, seq: number, lotId: string, spaceNumber: string, previousState: SpaceState, state: SpaceState, vehiclePlate: string | null, customerName: string | null, changedAt: string } };

export type IssueTicketMutationVariables = Exact<{
  input: IssueTicketInput;
}>;


export type IssueTicketMutation = { issueTicket: { seq: number, ticketId: string, vehiclePlate: string | null, assignedSpace: string | null, entryAt: string } };

export type CompletePaymentMutationVariables = Exact<{
  input: CompletePaymentInput;
}>;


export type CompletePaymentMutation = { completePayment: { seq: number, ticketId: string, amount: number, method: PaymentMethod, paidAt: string } };

export type RaiseParkingAlertMutationVariables = Exact<{
  input: RaiseParkingAlertInput;
}>;


export type RaiseParkingAlertMutation = { raiseParkingAlert: { seq: number, level: AlertLevel, message: string, actionRequired: boolean, automatic: boolean } };

export type LotQueryVariables = Exact<{
  lotId: string;
}>;


export type LotQuery = { lot: { id: string, name: string, spaces: Array<{ number: string, state: SpaceState, vehiclePlate: string | null }>, stats: { totalSpaces: number, freeSpaces: number, occupiedSpaces: number, reservedSpaces: number, outOfServiceSpaces: number, occupancyRate: number, revenueToday: number } } };

export type LotStatsQueryVariables = Exact<{
  lotId: string;
}>;


export type LotStatsQuery = { lotStats: { lotId: string, totalSpaces: number, freeSpaces: number, occupiedSpaces: number, reservedSpaces: number, outOfServiceSpaces: number, occupancyRate: number, revenueToday: number } };

export type RecentEventsQueryVariables = Exact<{
  channel: string;
  last?: number | null | undefined;
}>;


export type RecentEventsQuery = { recentEvents: Array<{ channel: string, seq: number, type: string, data: unknown, publishedAt: string }> };

export type ParkingUpdatedSubscriptionVariables = Exact<{
  lotId: string;
  after?: string | null | undefined;
}>;


export type ParkingUpdatedSubscription = { parkingUpdated:
    | { __typename: 'ParkingAlert', channel: string, seq: number, cursor: string | null, publishedAt: string, level: AlertLevel, message: string, actionRequired: boolean, automatic: boolean }
    | { __typename: 'PaymentCompleted', channel: string, seq: number, cursor: string | null, publishedAt: string, ticketId: string, amount: number, method: PaymentMethod }
    | { __typename: 'SpaceStateChanged', channel: string, seq: number, cursor: string | null, publishedAt: string, lotId: string, spaceNumber: string, previousState: SpaceState, state: SpaceState, vehiclePlate: string | null, customerName: string | null }
    | { __typename: 'TicketIssued', channel: string, seq: number, cursor: string | null, publishedAt: string, ticketId: string, vehiclePlate: string | null, assignedSpace: string | null }
   };

export type StatsUpdatedSubscriptionVariables = Exact<{
  lotId: string;
}>;


export type StatsUpdatedSubscription = { statsUpdated: { lotId: string, totalSpaces: number, freeSpaces: number, occupiedSpaces: number, reservedSpaces: number, outOfServiceSpaces: number, occupancyRate: number, revenueToday: number } };


export const UpsertLotDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"mutation","name":{"kind":"Name","value":"UpsertLot"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"input"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"UpsertLotInput"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"upsertLot"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"input"},"value":{"kind":"Variable","name":{"kind":"Name","value":"input"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"name"}},{"kind":"Field","name":{"kind":"Name","value":"alertThreshold"}},{"kind":"Field","name":{"kind":"Name","value":"stats"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"totalSpaces"}},{"kind":"Field","name":{"kind":"Name","value":"freeSpaces"}}]}}]}}]}}]} as unknown as DocumentNode<UpsertLotMutation, UpsertLotMutationVariables>;
export const SetSpaceStateDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"mutation","name":{"kind":"Name","value":"SetSpaceState"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"input"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"SetSpaceStateInput"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"setSpaceState"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"input"},"value":{"kind":"Variable","name":{"kind":"Name","value":"input"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"channel"}},{"kind":"Field","name":{"kind":"Name","value":"seq"}},{"kind":"Field","name":{"kind":"Name","value":"lotId"}},{"kind":"Field","name":{"kind":"Name","value":"spaceNumber"}},{"kind":"Field","name":{"kind":"Name","value":"previousState"}},{"kind":"Field","name":{"kind":"Name","value":"state"}},{"kind":"Field","name":{"kind":"Name","value":"vehiclePlate"}},{"kind":"Field","name":{"kind":"Name","value":"customerName"}},{"kind":"Field","name":{"kind":"Name","value":"changedAt"}}]}}]}}]} as unknown as DocumentNode<SetSpaceStateMutation, SetSpaceStateMutationVariables>;
export const IssueTicketDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"mutation","name":{"kind":"Name","value":"IssueTicket"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"input"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"IssueTicketInput"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"issueTicket"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"input"},"value":{"kind":"Variable","name":{"kind":"Name","value":"input"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"seq"}},{"kind":"Field","name":{"kind":"Name","value":"ticketId"}},{"kind":"Field","name":{"kind":"Name","value":"vehiclePlate"}},{"kind":"Field","name":{"kind":"Name","value":"assignedSpace"}},{"kind":"Field","name":{"kind":"Name","value":"entryAt"}}]}}]}}]} as unknown as DocumentNode<IssueTicketMutation, IssueTicketMutationVariables>;
export const CompletePaymentDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"mutation","name":{"kind":"Name","value":"CompletePayment"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"input"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"CompletePaymentInput"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"completePayment"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"input"},"value":{"kind":"Variable","name":{"kind":"Name","value":"input"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"seq"}},{"kind":"Field","name":{"kind":"Name","value":"ticketId"}},{"kind":"Field","name":{"kind":"Name","value":"amount"}},{"kind":"Field","name":{"kind":"Name","value":"method"}},{"kind":"Field","name":{"kind":"Name","value":"paidAt"}}]}}]}}]} as unknown as DocumentNode<CompletePaymentMutation, CompletePaymentMutationVariables>;
export const RaiseParkingAlertDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"mutation","name":{"kind":"Name","value":"RaiseParkingAlert"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"input"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"RaiseParkingAlertInput"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"raiseParkingAlert"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"input"},"value":{"kind":"Variable","name":{"kind":"Name","value":"input"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"seq"}},{"kind":"Field","name":{"kind":"Name","value":"level"}},{"kind":"Field","name":{"kind":"Name","value":"message"}},{"kind":"Field","name":{"kind":"Name","value":"actionRequired"}},{"kind":"Field","name":{"kind":"Name","value":"automatic"}}]}}]}}]} as unknown as DocumentNode<RaiseParkingAlertMutation, RaiseParkingAlertMutationVariables>;
export const LotDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"query","name":{"kind":"Name","value":"Lot"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"lotId"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"ID"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"lot"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"lotId"},"value":{"kind":"Variable","name":{"kind":"Name","value":"lotId"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"name"}},{"kind":"Field","name":{"kind":"Name","value":"spaces"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"number"}},{"kind":"Field","name":{"kind":"Name","value":"state"}},{"kind":"Field","name":{"kind":"Name","value":"vehiclePlate"}}]}},{"kind":"Field","name":{"kind":"Name","value":"stats"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"totalSpaces"}},{"kind":"Field","name":{"kind":"Name","value":"freeSpaces"}},{"kind":"Field","name":{"kind":"Name","value":"occupiedSpaces"}},{"kind":"Field","name":{"kind":"Name","value":"reservedSpaces"}},{"kind":"Field","name":{"kind":"Name","value":"outOfServiceSpaces"}},{"kind":"Field","name":{"kind":"Name","value":"occupancyRate"}},{"kind":"Field","name":{"kind":"Name","value":"revenueToday"}}]}}]}}]}}]} as unknown as DocumentNode<LotQuery, LotQueryVariables>;
export const LotStatsDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"query","name":{"kind":"Name","value":"LotStats"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"lotId"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"ID"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"lotStats"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"lotId"},"value":{"kind":"Variable","name":{"kind":"Name","value":"lotId"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"lotId"}},{"kind":"Field","name":{"kind":"Name","value":"totalSpaces"}},{"kind":"Field","name":{"kind":"Name","value":"freeSpaces"}},{"kind":"Field","name":{"kind":"Name","value":"occupiedSpaces"}},{"kind":"Field","name":{"kind":"Name","value":"reservedSpaces"}},{"kind":"Field","name":{"kind":"Name","value":"outOfServiceSpaces"}},{"kind":"Field","name":{"kind":"Name","value":"occupancyRate"}},{"kind":"Field","name":{"kind":"Name","value":"revenueToday"}}]}}]}}]} as unknown as DocumentNode<LotStatsQuery, LotStatsQueryVariables>;
export const RecentEventsDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"query","name":{"kind":"Name","value":"RecentEvents"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"channel"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"String"}}}},{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"last"}},"type":{"kind":"NamedType","name":{"kind":"Name","value":"Int"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"recentEvents"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"channel"},"value":{"kind":"Variable","name":{"kind":"Name","value":"channel"}}},{"kind":"Argument","name":{"kind":"Name","value":"last"},"value":{"kind":"Variable","name":{"kind":"Name","value":"last"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"channel"}},{"kind":"Field","name":{"kind":"Name","value":"seq"}},{"kind":"Field","name":{"kind":"Name","value":"type"}},{"kind":"Field","name":{"kind":"Name","value":"data"}},{"kind":"Field","name":{"kind":"Name","value":"publishedAt"}}]}}]}}]} as unknown as DocumentNode<RecentEventsQuery, RecentEventsQueryVariables>;
export const ParkingUpdatedDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"subscription","name":{"kind":"Name","value":"ParkingUpdated"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"lotId"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"ID"}}}},{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"after"}},"type":{"kind":"NamedType","name":{"kind":"Name","value":"String"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"parkingUpdated"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"lotId"},"value":{"kind":"Variable","name":{"kind":"Name","value":"lotId"}}},{"kind":"Argument","name":{"kind":"Name","value":"after"},"value":{"kind":"Variable","name":{"kind":"Name","value":"after"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"__typename"}},{"kind":"InlineFragment","typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"Event"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"channel"}},{"kind":"Field","name":{"kind":"Name","value":"seq"}},{"kind":"Field","name":{"kind":"Name","value":"cursor"}},{"kind":"Field","name":{"kind":"Name","value":"publishedAt"}}]}},{"kind":"InlineFragment","typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"SpaceStateChanged"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"lotId"}},{"kind":"Field","name":{"kind":"Name","value":"spaceNumber"}},{"kind":"Field","name":{"kind":"Name","value":"previousState"}},{"kind":"Field","name":{"kind":"Name","value":"state"}},{"kind":"Field","name":{"kind":"Name","value":"vehiclePlate"}},{"kind":"Field","name":{"kind":"Name","value":"customerName"}}]}},{"kind":"InlineFragment","typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"TicketIssued"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"ticketId"}},{"kind":"Field","name":{"kind":"Name","value":"vehiclePlate"}},{"kind":"Field","name":{"kind":"Name","value":"assignedSpace"}}]}},{"kind":"InlineFragment","typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"PaymentCompleted"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"ticketId"}},{"kind":"Field","name":{"kind":"Name","value":"amount"}},{"kind":"Field","name":{"kind":"Name","value":"method"}}]}},{"kind":"InlineFragment","typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"ParkingAlert"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"level"}},{"kind":"Field","name":{"kind":"Name","value":"message"}},{"kind":"Field","name":{"kind":"Name","value":"actionRequired"}},{"kind":"Field","name":{"kind":"Name","value":"automatic"}}]}}]}}]}}]} as unknown as DocumentNode<ParkingUpdatedSubscription, ParkingUpdatedSubscriptionVariables>;
export const StatsUpdatedDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"subscription","name":{"kind":"Name","value":"StatsUpdated"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"lotId"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"ID"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"statsUpdated"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"lotId"},"value":{"kind":"Variable","name":{"kind":"Name","value":"lotId"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"lotId"}},{"kind":"Field","name":{"kind":"Name","value":"totalSpaces"}},{"kind":"Field","name":{"kind":"Name","value":"freeSpaces"}},{"kind":"Field","name":{"kind":"Name","value":"occupiedSpaces"}},{"kind":"Field","name":{"kind":"Name","value":"reservedSpaces"}},{"kind":"Field","name":{"kind":"Name","value":"outOfServiceSpaces"}},{"kind":"Field","name":{"kind":"Name","value":"occupancyRate"}},{"kind":"Field","name":{"kind":"Name","value":"revenueToday"}}]}}]}}]} as unknown as DocumentNode<StatsUpdatedSubscription, StatsUpdatedSubscriptionVariables>;