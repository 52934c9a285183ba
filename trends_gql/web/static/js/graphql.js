// The pages' GraphQL client: what any same-origin client of /graphql does, nothing private.

const config = JSON.parse(document.getElementById("page-config").textContent);

/** The page's settings from the server: {graphql: path, graphiql: enabled}. */
export const pageConfig = config;

/** A GraphQL answer with errors; `code` and `field` are the first error's extensions. */
export class GraphQLError extends Error {
  constructor(errors, data = null, status = 200) {
    super(errors.map((e) => e.message).join("; "));
    this.name = "GraphQLError";
    this.errors = errors;
    this.data = data;
    this.status = status;
    this.code = errors[0]?.extensions?.code ?? null;
    this.field = errors[0]?.extensions?.field ?? null;
  }
}

async function answer(response) {
  let body;
  try {
    body = await response.json();
  } catch {
    const message = `The server answered ${response.status} ${response.statusText}`.trim();
    throw new GraphQLError([{ message, extensions: { code: `HTTP_${response.status}` } }], null,
      response.status);
  }
  if (body.errors?.length) throw new GraphQLError(body.errors, body.data ?? null, response.status);
  return body.data;
}

/** Run a query or mutation; resolves to `data`, rejects with GraphQLError. */
export async function request(query, variables = {}) {
  const response = await fetch(config.graphql, {
    method: "POST",
    credentials: "same-origin",
    headers: {
      "content-type": "application/json",
      accept: "application/graphql-response+json, application/json;q=0.9",
    },
    body: JSON.stringify({ query, variables }),
  });
  return answer(response);
}

/**
 * Run a mutation with files (the GraphQL multipart request spec); `files` maps a variable
 * name to a File. The preflight header satisfies the server's CSRF rule, as any client must.
 */
export async function upload(query, variables, files) {
  const form = new FormData();
  const map = {};
  const names = Object.keys(files);
  names.forEach((name, index) => {
    map[String(index)] = [`variables.${name}`];
  });
  form.append("operations", JSON.stringify({ query, variables: { ...variables,
    ...Object.fromEntries(names.map((n) => [n, null])) } }));
  form.append("map", JSON.stringify(map));
  names.forEach((name, index) => form.append(String(index), files[name]));
  const response = await fetch(config.graphql, {
    method: "POST",
    credentials: "same-origin",
    headers: { "graphql-require-preflight": "1", accept: "application/json" },
    body: form,
  });
  return answer(response);
}
