/* test_stats: the statistics of the reports (core/stats.c, issue 18)
 * against published worked examples, each cited where it is used:
 * ../shared/domain/reference-rates.md (R = its section) and
 * ../shared/domain/baricitinib.md section 6 (case numbers). Figures are
 * compared to the precision they were published with. */
#include <math.h>
#include <stdint.h>

#include "stats.h"
#include "test.h"

static void special_functions(void)
{
    /* Closed forms: P(1, x) = 1 - exp(-x); P(0.5, x) = erf(sqrt x). */
    CHECK_DBL(pv_gamma_p(1.0, 2.5), 1.0 - exp(-2.5), 1e-14);
    CHECK_DBL(pv_gamma_p(0.5, 3.0), erf(sqrt(3.0)), 1e-13);
    /* Integer shape: P(n, x) = 1 - exp(-x) sum_{k<n} x^k / k!. */
    for (int n = 1; n <= 40; n += 13) {
        for (double x = 0.5; x < 80; x *= 3) {
            long double term = 1, sum = 0;
            for (int k = 0; k < n; k++) {
                sum += term;
                term *= x / (k + 1);
            }
            CHECK_DBL(pv_gamma_p(n, x), (double)(1 - expl(-x) * sum), 1e-12);
        }
    }
    CHECK_DBL(pv_gamma_p(2.0, 0.0), 0.0, 0);
    /* Chi-square tables: 3.841459 (0.95, 1 df), 18.307038 (0.95, 10 df). */
    CHECK_DBL(pv_chi2_quantile(0.95, 1), 3.841459, 1e-6);
    CHECK_DBL(pv_chi2_quantile(0.95, 10), 18.307038, 1e-6);
    CHECK_DBL(pv_chi2_quantile(0.025, 2), 0.0506356, 1e-7);
    /* The inverse inverts, far into both tails. */
    double as[] = {0.01, 0.5, 1, 7.5, 120, 5000};
    double ps[] = {1e-10, 0.025, 0.5, 0.975, 1 - 1e-10};
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 5; j++)
            if (as[i] > 0.1 || ps[j] > 1e-3) /* else below 1e-308 */
                CHECK_DBL(pv_gamma_p(as[i], pv_gamma_p_inv(as[i], ps[j])),
                          ps[j],
                          1e-9 * (ps[j] < 0.5 ? ps[j] : 1 - ps[j]) + 1e-15);
    CHECK_DBL(pv_gamma_p_inv(3, 0), 0.0, 0);
    CHECK(isinf(pv_gamma_p_inv(3, 1)));
    /* psi(1) = -Euler's gamma; psi(0.5) = -gamma - 2 ln 2. */
    CHECK_DBL(pv_digamma(1.0), -0.5772156649015329, 1e-13);
    CHECK_DBL(pv_digamma(0.5), -0.5772156649015329 - 2 * log(2.0), 1e-13);
    CHECK_DBL(pv_digamma(100.0), 4.600161852738087, 1e-13);
}

static void poisson_and_incidence(void)
{
    /* R 4.3: exact (Garwood) CIs per 100 PY, to 4 decimals. */
    static const struct {
        double k, py, ir, lo, hi;
    } rows[] = {
        {0, 100, 0, 0, 3.6889},
        {1, 100, 1.0, 0.0253, 5.5716},
        {5, 250, 2.0, 0.6494, 4.6673},
        {10, 1000, 1.0, 0.4795, 1.8390},
        {72, 14744, 0.4883, 0.3821, 0.6150},
        /* 1 in 10 PY: the 1-in-100 row times ten. */
        {1, 10, 10.0, 0.253, 55.716},
        /* 50 in 1000 PY: the exact 95 % limits of 50 are 37.11 and
         * 65.92 (Garwood tables). */
        {50, 1000, 5.0, 3.711, 6.592},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct pv_rate r = pv_incidence_100py(rows[i].k, rows[i].py);
        CHECK_DBL(r.rate, rows[i].ir, 0.00005 * (rows[i].ir + 1));
        CHECK_DBL(r.lo, rows[i].lo, 0.00006 * (rows[i].hi + 1));
        CHECK_DBL(r.hi, rows[i].hi, 0.00006 * (rows[i].hi + 1));
    }
    /* 72 events over 14,744 PYE reproduce Taylor 2022's DVT/PE 0.5
     * (0.38 to 0.61), rounded to 2 decimals. */
    struct pv_rate t = pv_incidence_100py(72, 14744);
    CHECK_DBL(round(t.lo * 100) / 100, 0.38, 1e-9);
    CHECK_DBL(round(t.hi * 100) / 100, 0.61, 1e-9);
    /* No person-time: zeros, not NaN or infinity. */
    struct pv_rate z = pv_incidence_100py(3, 0);
    CHECK(z.rate == 0 && z.lo == 0 && z.hi == 0);
    /* SIR: 10 observed, 5 expected -> 2.0 (0.959 to 3.678). */
    struct pv_rate s = pv_sir(10, 5);
    CHECK_DBL(s.rate, 2.0, 1e-12);
    CHECK_DBL(s.lo, 4.795389 / 5, 1e-6);
    CHECK_DBL(s.hi, 18.390356 / 5, 1e-6);
    struct pv_rate s0 = pv_sir(4, 0);
    CHECK(s0.rate == 0 && s0.lo == 0 && s0.hi == 0);
}

static void disproportionality(void)
{
    struct pv_dispro d;

    /* baricitinib.md case 27. */
    pv_dispro_compute(10, 90, 100, 9800, &d);
    CHECK_DBL(d.prr, 9.90, 0.005);
    CHECK_DBL(d.chi2_uncorrected, 73.55, 0.005);
    CHECK_DBL(d.chi2, 65.51, 0.005);
    CHECK_DBL(d.ror, 10.89, 0.005);
    CHECK_DBL(d.ror_lo, 5.50, 0.005);
    CHECK_DBL(d.ror_hi, 21.54, 0.005);
    CHECK_DBL(d.expected, 1.10, 1e-12);
    CHECK_DBL(d.ic, 2.714, 0.0005);
    CHECK_DBL(d.ic025, 1.684, 0.0005);
    CHECK(d.evans && d.ror_signal && d.ic_signal && !d.haldane);

    /* Case 28: PRR 2.97, chi-square 3.85 uncorrected, 2.14 Yates, ROR
     * lower limit 0.94: no signal by Evans or by ROR. */
    pv_dispro_compute(3, 97, 100, 9800, &d);
    CHECK_DBL(d.prr, 2.97, 0.005);
    CHECK_DBL(d.chi2_uncorrected, 3.85, 0.005);
    CHECK_DBL(d.chi2, 2.14, 0.005);
    CHECK_DBL(d.ror_lo, 0.94, 0.005);
    CHECK(!d.evans && !d.ror_signal);

    /* Case 29: PRR 3.98, chi-square 4.42 uncorrected, but a = 2 < 3. */
    pv_dispro_compute(2, 48, 100, 9850, &d);
    CHECK_DBL(d.prr, 3.98, 0.005);
    CHECK_DBL(d.chi2_uncorrected, 4.42, 0.005);
    CHECK(!d.evans && !d.ror_signal);

    /* pvda: ror(a=1:2, b=2:3, c=3:4, d=4:5) = 0.667, 0.833. */
    pv_dispro_compute(1, 2, 3, 4, &d);
    CHECK_DBL(d.ror, 0.667, 0.0005);
    pv_dispro_compute(2, 3, 4, 5, &d);
    CHECK_DBL(d.ror, 0.833, 0.0005);

    /* Degenerate cells: defined and finite, Haldane-Anscombe marked. */
    static const double cells[][4] = {{0, 10, 5, 100}, {4, 0, 5, 100},
                                      {4, 10, 0, 100}, {4, 10, 5, 0},
                                      {0, 0, 0, 0},    {7, 0, 0, 0}};
    for (size_t i = 0; i < sizeof cells / sizeof cells[0]; i++) {
        const double *c = cells[i];
        pv_dispro_compute(c[0], c[1], c[2], c[3], &d);
        CHECK(d.haldane);
        double all[] = {d.prr,      d.prr_lo, d.prr_hi, d.ror,
                        d.ror_lo,   d.ror_hi, d.chi2,   d.chi2_uncorrected,
                        d.expected, d.ic,     d.ic025,  d.ic975};
        for (size_t j = 0; j < sizeof all / sizeof all[0]; j++)
            CHECK(isfinite(all[j]));
    }
    pv_dispro_compute(0, 0, 0, 0, &d);
    CHECK_DBL(d.chi2, 0, 0);
    CHECK(!d.evans && !d.ror_signal);
}

static void information_component(void)
{
    double ic, lo, hi;
    /* R 4.2, the vigicaen snapshot, with the checked figures. */
    static const double rows[][4] = {{12, 0, 4.6439, 3.7137},
                                     {1, 0, 1.5850, -2.2123},
                                     {0, 0, 0, -9.9919},
                                     {18, 7.88, 1.1425, 0.3994}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        pv_ic(rows[i][0], rows[i][1], &ic, &lo, &hi);
        CHECK_DBL(ic, rows[i][2], 0.00005);
        CHECK_DBL(lo, rows[i][3], 0.00005);
        CHECK(hi > ic && isfinite(hi));
    }
    pv_ic(0, 3.46, &ic, &lo, &hi); /* printed as -2.99 and -13.0 */
    CHECK_DBL(ic, -2.99, 0.005);
    CHECK_DBL(lo, -13.0, 0.05);
    /* Case 30 and the vigicaen ic_tail example: O 12, E 5. */
    pv_ic(12, 5, &ic, &lo, &hi);
    CHECK_DBL(ic, 1.184, 0.0005);
    CHECK_DBL(lo, 0.2542334, 5e-8);
}

static void ebgm_published(void)
{
    /* R 4.1: openEBGM's vignette, theta-hat as printed. EBGM is rounded
     * to 2 decimals there; the quantiles also carry its bisection
     * tolerance of 0.005, so they are compared within 0.015. */
    const struct pv_ebgm_prior th = {3.25379064, 0.39988801, 2.02613219,
                                     1.90808279, 0.06534557};
    static const struct {
        double n, e, qn, ebgm, q05, q95;
    } rows[] = {
        {1, 0.0360548272, 0.2819736, 2.23, 0.49, 13.85},
        {1, 0.0038736591, 0.3409652, 2.58, 0.52, 15.78},
        {1, 0.0002979738, 0.3482316, 2.63, 0.52, 16.02},
        {1, 0.0765792610, 0.2226354, 1.92, 0.47, 11.77},
        {1, 0.0527413588, 0.2556668, 2.09, 0.48, 12.95},
        {16, 0.40643623, -1, 23.26, 15.68, 33.48},
        {19, 0.89690107, -1, 16.78, 11.65, 23.55},
        {6, 0.07866508, -1, 18.28, 10.16, 30.83},
        {8, 0.30482718, -1, 15.25, 9.00, 24.52},
        {11, 0.56317044, -1, 14.28, 8.98, 21.78},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct pv_ebgm g;
        pv_ebgm_compute(&th, rows[i].n, rows[i].e, &g);
        if (rows[i].qn >= 0)
            CHECK_DBL(g.qn, rows[i].qn, 5e-8);
        CHECK_DBL(g.ebgm, rows[i].ebgm, 0.005);
        CHECK_DBL(g.eb05, rows[i].q05, 0.015);
        CHECK_DBL(g.eb95, rows[i].q95, 0.015);
        CHECK(g.eb05 < g.ebgm && g.ebgm < g.eb95);
    }
    /* Case 31: the openEBGM starting prior at N 10, E 1.1. */
    const struct pv_ebgm_prior init = {0.2, 0.1, 2, 4, 1.0 / 3};
    struct pv_ebgm g;
    pv_ebgm_compute(&init, 10, 1.1, &g);
    CHECK_DBL(g.qn, 0.99966, 0.000005);
    CHECK_DBL(g.ebgm, 8.083, 0.0005);
    CHECK_DBL(g.eb05, 4.639, 0.0005);
    /* A cell with E = 0 (a zero margin) stays finite. */
    pv_ebgm_compute(&init, 1, 0, &g);
    CHECK(isfinite(g.qn) && isfinite(g.ebgm) && isfinite(g.eb05));
}

/* A deterministic generator (splitmix64) for the fitting test. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static double uniform(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) / 9007199254740992.0;
}

static double poisson(double mean)
{
    double l = exp(-mean), p = 1.0;
    int k = 0;
    do {
        k++;
        p *= uniform();
    } while (p > l && k < 10000);
    return k - 1;
}

static double gamma_draw(double shape, double rate)
{
    return pv_gamma_quantile(uniform(), shape, rate);
}

static void ebgm_fit(void)
{
    /* Cells drawn from a known prior: the fit must find a likelihood at
     * least as high as the truth's (it is the maximum), and much higher
     * than the starting point's. */
    const struct pv_ebgm_prior truth = {0.6, 0.5, 3.0, 2.5, 0.2};
    enum { CELLS = 3000 };
    static double n[CELLS], e[CELLS];
    long count = 0;
    for (int i = 0; i < 20 * CELLS && count < CELLS; i++) {
        double ei = 0.05 + 3.0 * uniform();
        int first = uniform() < truth.p;
        double lam = first ? gamma_draw(truth.alpha1, truth.beta1)
                           : gamma_draw(truth.alpha2, truth.beta2);
        double ni = poisson(lam * ei);
        if (ni >= 1) {
            n[count] = ni, e[count] = ei;
            count++;
        }
    }
    CHECK_INT(count, CELLS);
    struct pv_ebgm_prior fit;
    CHECK_INT(pv_ebgm_fit(n, e, NULL, count, NULL, &fit), 0);
    double ll_fit = pv_ebgm_loglik(&fit, n, e, NULL, count);
    double ll_true = pv_ebgm_loglik(&truth, n, e, NULL, count);
    const struct pv_ebgm_prior init = {0.2, 0.1, 2, 4, 1.0 / 3};
    double ll_init = pv_ebgm_loglik(&init, n, e, NULL, count);
    CHECK(ll_fit >= ll_true - 1e-6);
    CHECK(ll_fit > ll_init + 1.0);
    /* Weights are counts: two copies of each cell = weight 2. */
    static double w[CELLS];
    for (long i = 0; i < count; i++)
        w[i] = 2.0;
    CHECK_DBL(pv_ebgm_loglik(&fit, n, e, w, count), 2 * ll_fit,
              1e-9 * fabs(ll_fit));
    /* No cells: an error, not a prior. */
    CHECK_INT(pv_ebgm_fit(n, e, NULL, 0, NULL, &fit), -1);
}

int main(void)
{
    special_functions();
    poisson_and_incidence();
    disproportionality();
    information_component();
    ebgm_published();
    ebgm_fit();
    return pv_test_report();
}
