// The `after` cursor of each page of a list: remembered as pages are seen, so that "Previous"
// needs no request, and otherwise found by walking the list from its first row.

import { request } from "../graphql.js";
import { WALK } from "./queries.js";
import { listKey, trendFilter, trendOrder } from "./state.js";

const WALK_STEP = 100; // rows skipped per request when walking to a page's cursor
const seen = new Map(); // listKey -> Map(page -> after cursor)

/** Remember the cursor that starts `page` of the state's list. */
export function rememberCursor(state, page, after) {
  const key = listKey(state);
  if (!seen.has(key)) seen.set(key, new Map());
  seen.get(key).set(page, after);
}

/** The cursor of a page of the state's list seen before, or null. */
export function knownCursor(state, page) {
  return seen.get(listKey(state))?.get(page) ?? null;
}

/** The `after` cursor of the state's page: its own (from the URL), one seen, or walked to. */
export async function cursorOf(state, megatrend, pageSize) {
  if (state.page === 1) return null;
  if (state.after) return state.after;
  const known = knownCursor(state, state.page);
  if (known) return known;
  let rows = (state.page - 1) * pageSize;
  let after = null;
  while (rows > 0) {
    const first = Math.min(rows, WALK_STEP);
    const variables = {
      filter: trendFilter({ ...state, megatrend }), orderBy: trendOrder(state), first, after,
    };
    const { pageInfo } = (await request(WALK, variables)).trends;
    if (!pageInfo.endCursor) break;
    after = pageInfo.endCursor;
    rows -= first;
    if (!pageInfo.hasNextPage) break;
  }
  return after;
}
