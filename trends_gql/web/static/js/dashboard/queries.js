// The dashboard's GraphQL documents. What the page sends (one POST to /graphql each):
// - opened with a megatrend in the URL: DASHBOARD with the megatrend list (1 request);
// - opened on plain `/`: MEGATRENDS, then DASHBOARD for the first one (2 requests);
// - another megatrend chosen: DASHBOARD without the list (1 request);
// - search, sort, a facet value or another page: PAGE (1 request);
// - a page whose cursor is not known (a hand-typed URL, or "Previous" from a shared page 3):
//   WALK first, which returns only the cursor (1 more request per 100 rows skipped).

const TREND_PAGE = `
fragment TrendPage on TrendConnection {
  totalCount
  pageInfo { hasNextPage endCursor }
  nodes {
    id
    macrotrend
    technologyReadinessLevel
    impactStrength
    steepl
    totalCountOfPublications
    totalCountOfPatents
    challengesAndResearchGaps
  }
}`;

export const MEGATRENDS = `
query DashboardMegatrends {
  megatrends { name trendCount macrotrendCount }
}`;

export const DASHBOARD = `
query Dashboard($megatrend: String!, $withMegatrends: Boolean!, $filter: TrendFilter!,
                $orderBy: [TrendOrder!], $first: Int!, $after: String) {
  megatrends @include(if: $withMegatrends) { name trendCount macrotrendCount }
  macrotrendReadiness(megatrend: $megatrend) {
    macrotrend trendCount ratedCount averageTrlScore
  }
  trendFacets(filter: {megatrend: $megatrend}) {
    total
    technologyReadinessLevel { value count }
    impactStrength { value count }
    steepl { value count }
  }
  trends(filter: $filter, orderBy: $orderBy, first: $first, after: $after) { ...TrendPage }
}
${TREND_PAGE}`;

export const PAGE = `
query DashboardTrends($filter: TrendFilter!, $orderBy: [TrendOrder!], $first: Int!,
                      $after: String) {
  trends(filter: $filter, orderBy: $orderBy, first: $first, after: $after) { ...TrendPage }
}
${TREND_PAGE}`;

export const WALK = `
query DashboardCursor($filter: TrendFilter!, $orderBy: [TrendOrder!], $first: Int!,
                      $after: String) {
  trends(filter: $filter, orderBy: $orderBy, first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
  }
}`;
