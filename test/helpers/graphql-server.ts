/**
 * A real GraphQL server for tests (graphql-js executing, graphql-http speaking GraphQL over HTTP) on
 * 127.0.0.1 and port 0, recording every HTTP request that reached it and every operation it ran.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildSchema, GraphQLError } from 'graphql';
import { createHandler } from 'graphql-http/lib/use/http';

export const LISTINGS_SDL = `
type Owner { name: String! listings(first: Int): [Listing!]! }
type Listing { id: ID! city: String! price: Float! tags: [String!]! owner: Owner! }
input ListingInput { city: String! price: Float! tags: [String!] }
enum Sort { PRICE_ASC PRICE_DESC }
type Query {
  listings(city: String!, limit: Int, maxPrice: Float, furnished: Boolean, ids: [ID!], sort: Sort): [Listing!]!
  listing(id: ID!): Listing
  secret: String
  teapot: String
  broken: String
  flaky: [Listing]
  search(term: String!, first: Int): [Listing!]!
}
type Mutation { createListing(input: ListingInput!): Listing! }
`;

interface Listing {
  id: string;
  city: string;
  price: number;
  tags: string[];
  owner: { name: string; listings: (args: { first?: number }) => Listing[] };
}

function listing(id: number, city: string): Listing {
  return {
    id: String(id),
    city,
    price: 100 * id,
    tags: ['a'],
    owner: { name: `owner-${id}`, listings: ({ first }) => [listing(id + 100, city)].slice(0, first ?? 1) },
  };
}

export interface GraphqlOperation {
  query: string;
  variables: Record<string, unknown> | null | undefined;
  operationName: string | null | undefined;
}

export interface GraphqlServer {
  url: string;
  server: Server;
  /** HTTP requests that reached the server (any method and path). */
  requests: number;
  /** Operations graphql-http accepted and executed, in order. */
  operations: GraphqlOperation[];
  close(): Promise<void>;
}

export async function startGraphqlServer(): Promise<GraphqlServer> {
  const schema = buildSchema(LISTINGS_SDL);
  const rootValue = {
    listings: ({ city, limit }: { city: string; limit?: number }) =>
      [1, 2, 3].map((i) => listing(i, city)).slice(0, limit ?? 3),
    listing: ({ id }: { id: string }) => {
      if (id === '404') throw new GraphQLError(`no listing ${id}`, { extensions: { code: 'NOT_FOUND' } });
      return listing(Number(id), 'Lyon');
    },
    secret: () => {
      throw new GraphQLError('who are you?', { extensions: { code: 'UNAUTHENTICATED' } });
    },
    teapot: () => {
      throw new GraphQLError('slow down', { extensions: { status: 429 } });
    },
    broken: () => {
      throw new Error('database down');
    },
    flaky: () => [
      listing(1, 'Paris'),
      {
        ...listing(2, 'Paris'),
        city: () => {
          throw new Error('one listing failed');
        },
      },
    ],
    search: ({ term, first }: { term: string; first?: number }) =>
      Array.from({ length: first ?? 2 }, (_, i) => listing(i + 1, term)),
    createListing: ({ input }: { input: { city: string; price: number } }) => ({
      ...listing(9, input.city),
      price: input.price,
    }),
  };
  const operations: GraphqlOperation[] = [];
  const handler = createHandler({
    schema,
    rootValue,
    context: (_req, params) => {
      operations.push({ query: params.query, variables: params.variables, operationName: params.operationName });
      return undefined;
    },
  });
  const state = { requests: 0 };
  const server = createServer((req, res) => {
    state.requests++;
    if (req.url?.startsWith('/graphql')) handler(req, res);
    else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not here');
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    get requests() {
      return state.requests;
    },
    set requests(n: number) {
      state.requests = n;
    },
    operations,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
