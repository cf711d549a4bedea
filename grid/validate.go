package grid

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// ValidationError lists every problem found in a network, each naming the
// element it concerns.
type ValidationError struct {
	Problems []string
}

func (e *ValidationError) Error() string {
	const show = 20
	p := e.Problems
	more := ""
	if len(p) > show {
		more = fmt.Sprintf("; and %d more", len(p)-show)
		p = p[:show]
	}
	return "grid: invalid network: " + strings.Join(p, "; ") + more
}

// Nominal voltages outside this range are not plausible for a bus in kV:
// above it the value was most likely given in volts.
const maxPlausibleKV = 1200.0

// Validate checks the model for dangling references, missing or
// non-positive impedances and ratings, implausible voltages (kV vs V) and
// buses that are not connected to any slack when switch states are taken
// into account. It returns a *ValidationError or nil.
func (n *Network) Validate() error {
	var p []string
	add := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }
	bad := func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }

	idx := map[string]int{}
	for i, b := range n.Buses {
		if b.ID == "" {
			add("bus #%d has no ID", i)
			continue
		}
		if _, dup := idx[b.ID]; dup {
			add("bus %q is defined twice", b.ID)
			continue
		}
		idx[b.ID] = i
		switch {
		case bad(b.VnKV) || b.VnKV <= 0:
			add("bus %q: nominal voltage %v kV must be positive", b.ID, b.VnKV)
		case b.VnKV > maxPlausibleKV:
			add("bus %q: nominal voltage %v kV is not plausible (above %v kV); was it given in volts? (%v V = %v kV)",
				b.ID, b.VnKV, maxPlausibleKV, b.VnKV, b.VnKV/1000)
		}
		if b.VMinPU != 0 || b.VMaxPU != 0 {
			if b.VMinPU < 0.5 || b.VMaxPU > 1.5 || b.VMinPU > b.VMaxPU {
				add("bus %q: voltage band [%v, %v] p.u. is not plausible (expected within [0.5, 1.5] p.u., min <= max); were limits given in kV or volts?",
					b.ID, b.VMinPU, b.VMaxPU)
			}
		}
	}
	vn := func(id string) float64 {
		if i, ok := idx[id]; ok {
			return n.Buses[i].VnKV
		}
		return 0
	}
	ref := func(kind, id, role, bus string) bool {
		if bus == "" {
			add("%s %q: %s bus is missing", kind, id, role)
			return false
		}
		if _, ok := idx[bus]; !ok {
			add("%s %q: %s bus %q does not exist", kind, id, role, bus)
			return false
		}
		return true
	}
	ids := map[string]bool{}
	uniq := func(kind, id string) {
		if id == "" {
			add("a %s has no ID", kind)
			return
		}
		if ids[kind+":"+id] {
			add("%s %q is defined twice", kind, id)
		}
		ids[kind+":"+id] = true
	}

	for _, l := range n.Lines {
		uniq("line", l.ID)
		okF := ref("line", l.ID, "from", l.FromBus)
		okT := ref("line", l.ID, "to", l.ToBus)
		if okF && okT && l.FromBus == l.ToBus {
			add("line %q connects bus %q to itself", l.ID, l.FromBus)
		}
		if bad(l.LengthKM) || l.LengthKM <= 0 {
			add("line %q: length %v km must be positive", l.ID, l.LengthKM)
		}
		if bad(l.ROhmPerKM) || bad(l.XOhmPerKM) || l.ROhmPerKM < 0 || l.XOhmPerKM < 0 || (l.ROhmPerKM == 0 && l.XOhmPerKM == 0) {
			add("line %q: impedance r=%v x=%v ohm/km is missing or not positive", l.ID, l.ROhmPerKM, l.XOhmPerKM)
		}
		if bad(l.BMicroSPerKM) || bad(l.GMicroSPerKM) || l.BMicroSPerKM < 0 || l.GMicroSPerKM < 0 {
			add("line %q: shunt b=%v g=%v µS/km must not be negative", l.ID, l.BMicroSPerKM, l.GMicroSPerKM)
		}
		if l.Parallel < 1 {
			add("line %q: parallel systems %d must be at least 1", l.ID, l.Parallel)
		}
		if l.MaxIKA < 0 || l.RatedMVA < 0 || bad(l.MaxIKA) || bad(l.RatedMVA) {
			add("line %q: rating %v kA / %v MVA must not be negative", l.ID, l.MaxIKA, l.RatedMVA)
		}
		if okF && okT {
			a, b := vn(l.FromBus), vn(l.ToBus)
			if a > 0 && b > 0 && (a/b > 1.1 || b/a > 1.1) {
				add("line %q connects buses of different nominal voltage (%q %v kV, %q %v kV); only a transformer can do that%s",
					l.ID, l.FromBus, a, l.ToBus, b, voltsHint(a, b))
			}
		}
	}
	for _, t := range n.Trafos {
		uniq("transformer", t.ID)
		okH := ref("transformer", t.ID, "HV", t.HVBus)
		okL := ref("transformer", t.ID, "LV", t.LVBus)
		if okH && okL && t.HVBus == t.LVBus {
			add("transformer %q connects bus %q to itself", t.ID, t.HVBus)
		}
		if bad(t.SnMVA) || t.SnMVA <= 0 {
			add("transformer %q: rated power %v MVA must be positive", t.ID, t.SnMVA)
		}
		if bad(t.VnHVKV) || bad(t.VnLVKV) || t.VnHVKV <= 0 || t.VnLVKV <= 0 {
			add("transformer %q: rated voltages %v/%v kV must be positive", t.ID, t.VnHVKV, t.VnLVKV)
		}
		if bad(t.VkPercent) || t.VkPercent <= 0 {
			add("transformer %q: short-circuit voltage vk %v %% is missing or not positive", t.ID, t.VkPercent)
		} else if bad(t.VkrPercent) || t.VkrPercent < 0 || t.VkrPercent >= t.VkPercent {
			add("transformer %q: vkr %v %% must be >= 0 and below vk %v %%", t.ID, t.VkrPercent, t.VkPercent)
		}
		if t.PfeKW < 0 || t.I0Percent < 0 {
			add("transformer %q: no-load data pfe %v kW, i0 %v %% must not be negative", t.ID, t.PfeKW, t.I0Percent)
		}
		if t.TapSide != "" && t.TapSide != "hv" && t.TapSide != "lv" {
			add("transformer %q: tap side %q must be \"hv\" or \"lv\"", t.ID, t.TapSide)
		}
		if t.TapPercent <= -50 || t.TapPercent >= 50 {
			add("transformer %q: tap %v %% is not plausible", t.ID, t.TapPercent)
		}
		if okH && okL && t.VnHVKV > 0 && t.VnLVKV > 0 {
			for _, s := range []struct {
				side  string
				bus   string
				rated float64
			}{{"HV", t.HVBus, t.VnHVKV}, {"LV", t.LVBus, t.VnLVKV}} {
				b := vn(s.bus)
				if b > 0 && (b/s.rated > 1.25 || s.rated/b > 1.25) {
					add("transformer %q: %s rated voltage %v kV does not match bus %q at %v kV%s",
						t.ID, s.side, s.rated, s.bus, b, voltsHint(b, s.rated))
				}
			}
		}
	}
	ends := map[string][2]string{}
	for _, l := range n.Lines {
		ends["line:"+l.ID] = [2]string{l.FromBus, l.ToBus}
	}
	for _, t := range n.Trafos {
		ends["trafo:"+t.ID] = [2]string{t.HVBus, t.LVBus}
	}
	for _, s := range n.Switches {
		uniq("switch", s.ID)
		ref("switch", s.ID, "first", s.BusA)
		switch {
		case s.Element == "":
			if ref("switch", s.ID, "second", s.BusB) && s.BusA == s.BusB {
				add("switch %q connects bus %q to itself", s.ID, s.BusA)
			}
		case s.ElementKind == "line":
			if e, ok := ends["line:"+s.Element]; !ok {
				add("switch %q: line %q does not exist", s.ID, s.Element)
			} else if s.BusA != e[0] && s.BusA != e[1] {
				add("switch %q: bus %q is not an end of line %q (%q-%q)", s.ID, s.BusA, s.Element, e[0], e[1])
			}
		case s.ElementKind == "trafo":
			if e, ok := ends["trafo:"+s.Element]; !ok {
				add("switch %q: transformer %q does not exist", s.ID, s.Element)
			} else if s.BusA != e[0] && s.BusA != e[1] {
				add("switch %q: bus %q is not an end of transformer %q (%q-%q)", s.ID, s.BusA, s.Element, e[0], e[1])
			}
		default:
			add("switch %q: element kind %q must be \"line\" or \"trafo\"", s.ID, s.ElementKind)
		}
	}
	if len(n.Slacks) == 0 {
		add("no slack (external grid) bus: the power flow needs at least one")
	}
	for _, s := range n.Slacks {
		uniq("slack", s.ID)
		ref("slack", s.ID, "its", s.Bus)
		if bad(s.VmPU) || s.VmPU < 0.5 || s.VmPU > 1.5 {
			add("slack %q: voltage setpoint %v p.u. is not plausible (expected 0.5-1.5 p.u.); was it given in kV?", s.ID, s.VmPU)
		}
	}
	for _, l := range n.Loads {
		uniq("load", l.ID)
		ref("load", l.ID, "its", l.Bus)
		if bad(l.PMW) || bad(l.QMvar) {
			add("load %q: P/Q is not a number", l.ID)
		}
	}
	for _, g := range n.Gens {
		uniq("generator", g.ID)
		ref("generator", g.ID, "its", g.Bus)
		if bad(g.PMW) || bad(g.QMvar) {
			add("generator %q: P/Q is not a number", g.ID)
		}
	}
	for _, s := range n.Shunts {
		uniq("shunt", s.ID)
		ref("shunt", s.ID, "its", s.Bus)
		if bad(s.PMW) || bad(s.QMvar) {
			add("shunt %q: P/Q is not a number", s.ID)
		} else if s.PMW < 0 {
			add("shunt %q: active power %v MW at 1.0 p.u. must not be negative (a shunt only consumes active power)", s.ID, s.PMW)
		}
	}
	if len(p) == 0 {
		p = append(p, n.islands(idx)...)
	}
	if len(p) > 0 {
		return &ValidationError{Problems: p}
	}
	return nil
}

func voltsHint(a, b float64) string {
	r := a / b
	if r < 1 {
		r = 1 / r
	}
	if r > 500 && r < 2000 {
		return " (a factor of about 1000: one of them looks like volts instead of kV)"
	}
	return ""
}

// Components groups buses into electrical nodes (closed bus-bus switches
// merge) and connected islands (in-service lines and transformers not
// opened by a switch). It returns, per bus index, the node and the island.
func (n *Network) Components() (node, island []int) {
	idx := n.BusIndex()
	uf := newUnionFind(len(n.Buses))
	for _, s := range n.Switches {
		if s.Element == "" && s.Closed {
			uf.union(idx[s.BusA], idx[s.BusB])
		}
	}
	node = make([]int, len(n.Buses))
	for i := range node {
		node[i] = uf.find(i)
	}
	open := n.OpenBranches()
	for _, l := range n.Lines {
		if !open["line:"+l.ID] {
			uf.union(idx[l.FromBus], idx[l.ToBus])
		}
	}
	for _, t := range n.Trafos {
		if !open["trafo:"+t.ID] {
			uf.union(idx[t.HVBus], idx[t.LVBus])
		}
	}
	island = make([]int, len(n.Buses))
	for i := range island {
		island[i] = uf.find(i)
	}
	return node, island
}

func (n *Network) islands(idx map[string]int) []string {
	_, island := n.Components()
	fed := map[int]bool{}
	for _, s := range n.Slacks {
		fed[island[idx[s.Bus]]] = true
	}
	groups := map[int][]string{}
	for i, b := range n.Buses {
		if !fed[island[i]] {
			groups[island[i]] = append(groups[island[i]], b.ID)
		}
	}
	var p []string
	for _, g := range groups {
		sort.Strings(g)
		list := g
		if len(list) > 5 {
			list = list[:5]
		}
		p = append(p, fmt.Sprintf("island of %d bus(es) not connected to any slack (check switches and out-of-service branches): %s",
			len(g), quoteJoin(list, len(g) > 5)))
	}
	sort.Strings(p)
	return p
}

func quoteJoin(s []string, more bool) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	out := strings.Join(q, ", ")
	if more {
		out += ", ..."
	}
	return out
}

type unionFind []int

func newUnionFind(n int) unionFind {
	u := make(unionFind, n)
	for i := range u {
		u[i] = i
	}
	return u
}

func (u unionFind) find(i int) int {
	for u[i] != i {
		u[i] = u[u[i]]
		i = u[i]
	}
	return i
}

func (u unionFind) union(a, b int) {
	ra, rb := u.find(a), u.find(b)
	if ra != rb {
		if ra < rb {
			u[rb] = ra
		} else {
			u[ra] = rb
		}
	}
}
